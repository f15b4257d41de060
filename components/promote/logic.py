"""promote: publish the model as a new registry version and make it the champion (only when
evaluate's verdict is "promote": the pipeline gates this stage on it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.common.settings import RunConfig
from components.core.registry import PROFILE_FILE, SCHEMA_FILE, publish_version, settings_registry
from components.core.schema import TableSchema, dump_schema

__all__ = ["promote_model"]


def promote_model(
    model_dir: str | Path,
    evaluation: dict[str, Any],
    table_schema: TableSchema,
    quality: dict[str, Any],
    run_id: str,
    settings: RunConfig,
    data_fingerprint: str = "",
) -> dict[str, Any]:
    """The promote stage: the model, its evaluation, its schema (the contract later runs are
    checked against) and its data profile (their drift reference) as the registry version
    `run_id`, written first; the champion pointer switched last, only if it still names the
    champion evaluate compared with. Returns the new pointer; Superseded (nothing of the
    version left) when another run switched the champion in between."""
    attachments = {
        SCHEMA_FILE: dump_schema(table_schema).encode(),
        PROFILE_FILE: json.dumps(quality["profile"], indent=1).encode(),
    }
    return publish_version(
        settings_registry(settings),
        model_dir,
        run_id,
        {**evaluation, "run_id": run_id, "data_fingerprint": data_fingerprint},
        settings.s3_endpoint,
        attachments,
    )
