"""The features stage."""

from components.features.component import features

__all__ = ["features"]
