"""Stage entry points chained as a test helper (the pipeline chains them through artifacts)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.check_quality.logic import Reference, check_policy, judge_data
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
    check_policy(fail_on)  # before the work, not after it
    user_schema = reference.schema if reference.from_user else None
    schema = infer_checked_schema(frame, target, requested_task, user_schema)
    return schema, judge_data(
        frame, schema, reference, fail_on, rows_dropped_missing_target, duplicates
    )
