"""Structured stage logging and the error hand-off from a task to the CLI.

Every stage runs its body inside `stage(name)`. It prints one JSON line per event (stage, run id,
event, numbers) to stdout, which ends up in the task log on Kubeflow, and, when the CLI set
`STABLEPIPE_LOG_DIR`, appends the same line to `<log dir>/stages.jsonl` in the run folder.
A `BadInputError` raised inside a task is also written to `STABLEPIPE_ERROR_FILE` so that the CLI,
which only sees "task failed" from KFP, can print the user's one clear line and exit with 2.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.common.errors import BadInputError

RUN_ID_ENV = "STABLEPIPE_RUN_ID"
LOG_DIR_ENV = "STABLEPIPE_LOG_DIR"
ERROR_FILE_ENV = "STABLEPIPE_ERROR_FILE"


class StageLogger:
    """Writes structured events for one stage."""

    def __init__(self, stage_name: str) -> None:
        self.stage_name = stage_name
        self.run_id = os.environ.get(RUN_ID_ENV, "")
        log_dir = os.environ.get(LOG_DIR_ENV)
        self.log_file = Path(log_dir) / "stages.jsonl" if log_dir else None

    def log(self, event: str, **fields: Any) -> None:
        record = {
            "ts": round(time.time(), 3),
            "stage": self.stage_name,
            "run_id": self.run_id,
            "event": event,
            **fields,
        }
        line = json.dumps(record, default=str, sort_keys=False)
        print(line, flush=True)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def report_bad_input(stage_name: str, error: BadInputError) -> None:
    """Leave the user-facing message where the CLI looks for it (first error wins)."""
    error_file = os.environ.get(ERROR_FILE_ENV)
    if not error_file or Path(error_file).exists():
        return
    Path(error_file).parent.mkdir(parents=True, exist_ok=True)
    problem = {"stage": stage_name, "message": str(error), **getattr(error, "details", {})}
    Path(error_file).write_text(json.dumps(problem, default=str), encoding="utf-8")


@contextmanager
def stage(stage_name: str, inputs: dict[str, Any] | None = None) -> Iterator[StageLogger]:
    """Run a stage body with start/finish/failure events and the bad-input hand-off. The
    `inputs` that are run settings (a component passes its `locals()`) are checked first: a
    value typed into the Kubeflow UI gets the same message as the same flag."""
    from components.common.settings import check_settings

    logger = StageLogger(stage_name)
    started = time.perf_counter()
    logger.log("started")
    try:
        check_settings(inputs or {})
        yield logger
    except BadInputError as error:
        report_bad_input(stage_name, error)
        logger.log("bad_input", message=str(error))
        raise
    except Exception as error:
        logger.log("failed", error=type(error).__name__, message=str(error))
        raise
    logger.log("finished", seconds=round(time.perf_counter() - started, 3))
