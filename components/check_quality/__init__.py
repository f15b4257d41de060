"""The check_quality stage."""

from components.check_quality.component import check_quality

__all__ = ["check_quality"]
