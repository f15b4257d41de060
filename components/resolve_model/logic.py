"""resolve_model: the stored model batch prediction scores with, copied and checked to load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.common.settings import RunConfig
from components.core.registry import download_model

__all__ = ["resolve_stored_model"]


def resolve_stored_model(folder: str | Path, settings: RunConfig) -> dict[str, Any]:
    """The resolve_model stage: the settings' `model` (a run's model folder,
    `<registry>/<name>/champion`, or the same on S3) copied into the new `folder` once it
    loads; returns its facts."""
    loaded = download_model(settings.model, folder, settings.s3_endpoint)
    return {
        "location": settings.model,
        "version": loaded.version or "",
        "task": loaded.card["task"],
        "target": loaded.card["target"],
    }
