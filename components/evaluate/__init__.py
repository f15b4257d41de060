"""The evaluate stage."""

from components.evaluate.component import evaluate

__all__ = ["evaluate"]
