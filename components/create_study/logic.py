"""create_study: make the shared Optuna study (and its storage) before any search worker starts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from components.common.settings import RunConfig
from components.core.metrics import cv_metric
from components.core.study import create_study

__all__ = ["create_search_study"]


def create_search_study(
    study_dir: str | Path, settings: RunConfig
) -> tuple[dict[str, Any], list[int]]:
    """The create_study stage: a study of its own name, optimising the task's search metric;
    returns its spec and the workers' indices (the items of the search's ParallelFor)."""
    metric = cv_metric(settings.task)
    spec = create_study(study_dir, f"stablepipe-{uuid.uuid4().hex[:12]}", metric)
    return spec, list(range(settings.workers))
