"""The resolve_model stage."""

from components.resolve_model.component import resolve_model

__all__ = ["resolve_model"]
