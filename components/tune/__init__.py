"""The tune stage."""

from components.tune.component import collect, tune

__all__ = ["collect", "tune"]
