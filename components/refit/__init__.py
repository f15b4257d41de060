"""The refit stage."""

from components.refit.component import refit

__all__ = ["refit"]
