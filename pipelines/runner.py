"""Run the training pipeline locally under kfp.local and assemble the run folder.

<runs-dir>/<run_id>/
  summary.json     written last; its presence with status "succeeded" means the run is whole
  report.html      the evaluation report
  schema.json      the inferred schema
  model/           the fitted Pipeline and its card
  logs/pipeline.log  everything kfp.local and the tasks printed
  logs/stages.jsonl  one structured line per stage event
<runs-dir>/.kfp/   kfp.local's pipeline root and task cache, shared by runs (resume)
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from components.common.config import RunConfig
from components.common.errors import BadInputError
from components.common.stage import ERROR_FILE_ENV, LOG_DIR_ENV, RUN_ID_ENV
from components.common.storage import open_storage

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
CACHE_HIT = re.compile(r"Task '?([\w-]+)'? cache hit")
STAGE_ORDER = (
    "ingest",
    "validate",
    "split",
    "preprocess",
    "features",
    "create_study",
    "tune",
    "collect",
    "train",
    "evaluate",
    "promote",
)


@dataclass
class StageTiming:
    name: str
    status: str = "running"
    started: float = 0.0
    finished: float = 0.0
    tasks: int = 0

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "seconds": round(max(0.0, self.finished - self.started), 3),
        }
        if self.tasks > 1:
            entry["tasks"] = self.tasks
        return entry


@dataclass
class ProgressTee(io.TextIOBase):
    """Stands in for stdout during the run: everything goes to the log file; stage starts and
    ends are picked out of kfp.local's lines and shown as one line per stage."""

    log: TextIO
    terminal: TextIO
    stages: dict[str, StageTiming] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    _buffer: str = ""
    # kfp.local runs the ParallelFor's tasks on threads that print at the same time.
    _lock: Any = field(default_factory=threading.RLock)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self.log.write(text)
            self._buffer += text
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                self.observe(ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def observe(self, line: str) -> None:
        now = time.perf_counter()
        if match := STARTED.search(line):
            name = match.group(1).replace("-", "_")
            timing = self.stages.setdefault(name, StageTiming(name, started=now))
            timing.tasks += 1
            self.running[name] = self.running.get(name, 0) + 1
        elif match := CACHE_HIT.search(line):
            name = match.group(1).replace("-", "_")
            timing = self.stages.setdefault(name, StageTiming(name, started=now))
            first_hit = timing.status != "cached"
            timing.status, timing.finished = "cached", now
            timing.tasks += 1
            if first_hit:
                self.show(timing)
        elif match := FINISHED.search(line):
            name = match.group(1).replace("-", "_")
            timing = self.stages.setdefault(name, StageTiming(name, started=now))
            self.running[name] = self.running.get(name, 1) - 1
            failed = match.group(2) != "SUCCESS"
            if failed:
                timing.status = "failed"
            elif timing.status != "cached" and self.running[name] <= 0:
                timing.status = "succeeded"
            if self.running[name] <= 0 or failed:
                timing.finished = now
                self.show(timing)

    def show(self, timing: StageTiming) -> None:
        mark = {"succeeded": "✓", "cached": "↺", "failed": "✗"}.get(timing.status, "·")
        extra = (
            f"  ({timing.tasks} workers)" if timing.tasks > 1 and timing.status != "cached" else ""
        )
        note = "  cached" if timing.status == "cached" else ""
        seconds = timing.finished - timing.started
        # Not print(): kfp.local swaps builtins.print for an indenting wrapper that writes to
        # sys.stdout (this object) while its tasks run, which would re-enter write().
        self.terminal.write(f"  {mark} {timing.name:<13}{seconds:6.1f}s{note}{extra}\n")
        self.terminal.flush()

    def stage_list(self) -> list[dict[str, Any]]:
        names = sorted(self.stages, key=lambda n: STAGE_ORDER.index(n) if n in STAGE_ORDER else 99)
        listed = [self.stages[n].as_dict() for n in names]
        seen = {entry["name"] for entry in listed}
        listed += [
            {"name": n, "status": "skipped", "seconds": 0.0} for n in STAGE_ORDER if n not in seen
        ]
        return listed


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def pipeline_arguments(config: RunConfig, fingerprint: str, run_id: str) -> dict[str, Any]:
    """The pipeline parameters of a run (no credentials are ever among them)."""
    return {
        "source": config.data,
        "target": config.target,
        "task": config.task,
        "data_fingerprint": fingerprint,
        "test_size": config.test_size,
        "seed": config.seed,
        "outliers": config.outliers,
        "scaling": config.scaling,
        "max_categories": config.max_categories,
        "feature_method": config.features,
        "pca_variance": config.pca_variance,
        "trials": config.trials,
        "workers": config.workers,
        "time_budget": config.time_budget,
        "cv_folds": config.cv_folds,
        "registry": config.registry_uri(),
        "s3_endpoint": config.s3_endpoint,
        "min_improvement": config.min_improvement,
        "run_id": run_id,
    }


@contextlib.contextmanager
def kfp_messages_to(stream: io.TextIOBase) -> Any:
    """Route kfp.local's log records that it emits outside its own logger context (cache hits,
    skipped conditional tasks) to `stream`, which otherwise the root logger's level drops."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


@contextlib.contextmanager
def run_environment(run_id: str, log_dir: Path, error_file: Path) -> Any:
    """Tell the tasks (child processes) where to log and where to leave a bad-input message."""
    values = {RUN_ID_ENV: run_id, LOG_DIR_ENV: str(log_dir), ERROR_FILE_ENV: str(error_file)}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_json(path: str | Path) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    partial.replace(path)


class RunFailed(Exception):
    """The pipeline failed for a reason that is not the user's input (exit code 1)."""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def execute(config: RunConfig, terminal: TextIO = sys.stderr) -> RunResult:
    """Run the whole pipeline under kfp.local; write the run folder; return its summary.

    Raises BadInputError (exit 2) for data the pipeline rejected and RunFailed (exit 1) for
    anything else; in both cases summary.json says "failed" and the champion is untouched.
    """
    from kfp import local

    from components.ingest.logic import source_fingerprint
    from pipelines.training import training_pipeline

    # fails early on a missing or non-table file, and on a store that cannot be reached
    fingerprint = source_fingerprint(config.data, config.s3_endpoint)
    if config.store:
        open_storage(config.store, config.s3_endpoint).keys("runs/none")
    runs_dir = Path(config.runs_dir).resolve()
    run_id = new_run_id()
    run_dir = runs_dir / run_id
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True)
    error_file = log_dir / "error.json"
    kfp_root = runs_dir / ".kfp"
    summary: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "target": config.target,
        "task": None if config.task == "auto" else config.task,
        "data": {"source": config.data, "sha256": fingerprint},
        # filled in by a run that succeeds; a failed run keeps the keys, empty
        "best": None,
        "metrics": {"test": {}},
        "promoted": False,
        "artifacts": {},
        "config": config.as_dict(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(
        f"stablepipe run {run_id}: {config.data} -> {config.target!r} "
        f"({config.trials} trials, {config.workers} workers)",
        file=terminal,
        flush=True,
    )
    started = time.perf_counter()
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(kfp_root / "outputs"),
        enable_caching=config.cache,
        cache_root=str(kfp_root / "cache"),
    )
    with open(log_dir / "pipeline.log", "w", encoding="utf-8") as log:
        tee = ProgressTee(log=log, terminal=terminal)
        try:
            with (
                run_environment(run_id, log_dir, error_file),
                contextlib.redirect_stdout(tee),
                kfp_messages_to(tee),
                warnings.catch_warnings(),
            ):
                # The component image is the project's own; locally the same code runs in this
                # environment, which is what kfp's "non-Python base image" warning is about.
                warnings.filterwarnings(
                    "ignore", message="You may be attemping", category=RuntimeWarning
                )
                task = training_pipeline(**pipeline_arguments(config, fingerprint, run_id))
        except Exception as error:
            summary.update(
                status="failed",
                stages=tee.stage_list(),
                seconds=round(time.perf_counter() - started, 3),
            )
            if error_file.exists():
                problem = read_json(error_file)
                summary["error"] = {"kind": "bad_input", **problem}
                write_json_atomic(run_dir / "summary.json", summary)
                raise BadInputError(problem["message"]) from error
            summary["error"] = {"kind": "internal", "message": ANSI.sub("", str(error))}
            write_json_atomic(run_dir / "summary.json", summary)
            raise RunFailed(
                f"{ANSI.sub('', str(error))} (run {run_id}; log: {log_dir / 'pipeline.log'})"
            ) from error
    try:
        summary.update(assemble(task.outputs, run_dir, config, run_id))
        summary.update(
            stages=tee.stage_list(),
            seconds=round(time.perf_counter() - started, 3),
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            status="succeeded",
        )
        if config.store:
            summary["published"] = publish_run(run_dir, summary, config, run_id)
    except Exception as error:
        summary.update(
            status="failed",
            stages=tee.stage_list(),
            error={"kind": "internal", "message": str(error)},
        )
        write_json_atomic(run_dir / "summary.json", summary)
        raise RunFailed(
            f"the pipeline finished but its outputs could not be gathered or "
            f"published: {error} (run {run_id})"
        ) from error
    write_json_atomic(run_dir / "summary.json", summary)
    return RunResult(run_dir, summary)


def publish_run(
    run_dir: Path, summary: dict[str, Any], config: RunConfig, run_id: str
) -> dict[str, str]:
    """Upload the run folder to `<store>/runs/<run_id>/`, summary.json last (its presence means
    the run's outputs are all there); return the published artifacts' URIs."""
    store = open_storage(config.store, config.s3_endpoint)
    prefix = f"runs/{run_id}"
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(run_dir).as_posix()
        if relative != "summary.json":
            store.put_file(path, f"{prefix}/{relative}")
    published = {
        "summary": store.uri_of(f"{prefix}/summary.json"),
        "model": store.uri_of(f"{prefix}/model"),
        "report": store.uri_of(f"{prefix}/report.html"),
        "schema": store.uri_of(f"{prefix}/schema.json"),
        "logs": store.uri_of(f"{prefix}/logs"),
    }
    document = {**summary, "published": published}
    store.put_bytes(json.dumps(document, indent=2, default=str).encode(), f"{prefix}/summary.json")
    return published


def assemble(
    outputs: dict[str, Any], run_dir: Path, config: RunConfig, run_id: str
) -> dict[str, Any]:
    """Copy the run's artifacts into its folder and gather the summary's facts."""
    from components.promote.logic import champion_pointer

    shutil.copytree(outputs["model"].path, run_dir / "model")
    shutil.copyfile(outputs["report"].path, run_dir / "report.html")
    shutil.copyfile(outputs["schema"].path, run_dir / "schema.json")
    schema, best = read_json(run_dir / "schema.json"), read_json(outputs["best"].path)
    evaluation = read_json(outputs["evaluation"].path)
    data = dict(outputs["dataset"].metadata)
    for key in ("rows", "columns", "rows_read", "rows_dropped_missing_target"):
        data[key] = int(data[key])
    pointer = champion_pointer(config.registry_uri(), config.s3_endpoint)
    promoted = pointer is not None and pointer.get("version") == run_id
    return {
        "task": schema["task"],
        "data": data,
        "best": best,
        "metrics": evaluation["metrics"],
        "promoted": promoted,
        "promotion": evaluation["verdict"],
        "registry": config.registry_uri(),
        "champion": pointer,
        "artifacts": {
            "model": str(run_dir / "model"),
            "report": str(run_dir / "report.html"),
            "schema": str(run_dir / "schema.json"),
            "logs": str(run_dir / "logs"),
        },
    }
