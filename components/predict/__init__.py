"""The predict stage: score rows with a saved model (batch prediction)."""

from components.predict.component import batch_predict, load_rows, resolve_model

__all__ = ["batch_predict", "load_rows", "resolve_model"]
