"""The tune stage: one search worker of the shared study."""

from components.tune.component import tune

__all__ = ["tune"]
