"""The batch_predict stage."""

from components.batch_predict.component import batch_predict

__all__ = ["batch_predict"]
