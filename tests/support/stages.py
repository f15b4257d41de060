"""Stage entry points chained as a test helper (the pipeline chains them through artifacts)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from components.check_quality.logic import Reference, judge_data
from components.common.settings import RunConfig, check_setting
from components.core.source.files import ReadOptions
from components.ingest.logic import ingest_data
from components.validate.logic import infer_checked_schema


def check_data(
    frame: pd.DataFrame,
    target: str,
    requested_task: str,
    reference: Reference,
    fail_on: str = "error",
    rows_dropped_missing_target: int = 0,
    duplicates: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both steps: the schema of `frame` and its data-quality verdict."""
    check_setting("fail_on", fail_on)  # before the work, not after it
    user_schema = reference.schema if reference.from_user else None
    schema = infer_checked_schema(frame, target, requested_task, user_schema)
    return schema, judge_data(
        frame, schema, reference, fail_on, rows_dropped_missing_target, duplicates
    )


def ingest_to_parquet(
    source: str,
    target: str,
    output: str | Path,
    endpoint: str = "",
    options: ReadOptions | None = None,
    stream_above_bytes: int = 256 << 20,
) -> dict[str, Any]:
    """The ingest stage's entry, called with a file's reading options as one object and the
    streaming threshold in bytes (the tests pick it down to 0)."""
    reading = asdict(options) if options is not None else {}
    files = reading.pop("files", ())
    settings = RunConfig(
        data=source,
        target=target,
        s3_endpoint=endpoint,
        stream_above_mb=stream_above_bytes / 2**20,
        **reading,
    )
    return ingest_data(output, settings, files)
