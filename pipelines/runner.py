"""Run the training pipeline locally under kfp.local and assemble the run folder.

<runs-dir>/<run_id>/
  summary.json     written last; its presence with status "succeeded" means the run is whole
  report.html      the evaluation report
  schema.json      the inferred schema
  test_predictions.parquet  the model's predictions for the test split (as `predict` gives)
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
from components.common.errors import BadInputError, DataRejected
from components.common.stage import ERROR_FILE_ENV, LOG_DIR_ENV, RUN_ID_ENV
from components.common.storage import open_parent, open_storage

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
CACHE_HIT = re.compile(r"Task '?([\w-]+)'? cache hit")
STAGE_ORDER = (
    "ingest",
    "validate",
    "check_quality",
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


def read_options(config: RunConfig, files: list[str] | None = None) -> Any:
    from components.core.source.files import ReadOptions

    return ReadOptions(
        delimiter=config.delimiter,
        encoding=config.encoding,
        header=config.header,
        sheet=config.sheet,
        decimal=config.decimal,
        table=config.table,
        query=config.query,
        files=tuple(files or ()),
    )


@dataclass
class Preflight:
    """What the runner settles before the pipeline starts: the data's fingerprint, the files an
    incremental run takes, the schema file to check against and the champion it saw."""

    fingerprint: str
    files: list[str]
    schema_file: str
    schema_version: str
    reference_version: str
    incremental: dict[str, Any] | None = None


def pipeline_arguments(config: RunConfig, preflight: Preflight, run_id: str) -> dict[str, Any]:
    """The pipeline parameters of a run (no credentials are ever among them)."""
    return {
        "source": config.data,
        "target": config.target,
        "task": config.task,
        "data_fingerprint": preflight.fingerprint,
        "table": config.table,
        "query": config.query,
        "delimiter": config.delimiter,
        "encoding": config.encoding,
        "header": config.header,
        "sheet": config.sheet,
        "decimal": config.decimal,
        "files": preflight.files,
        "stream_above_mb": config.stream_above_mb,
        "schema_file": preflight.schema_file,
        "schema_version": preflight.schema_version,
        "fail_on": config.fail_on,
        "reference_version": preflight.reference_version,
        "test_size": config.test_size,
        "seed": config.seed,
        "outliers": config.outliers,
        "scaling": config.scaling,
        "max_categories": config.max_categories,
        "feature_method": config.features,
        "pca_variance": config.pca_variance,
        "svd_components": config.svd_components,
        "variance_threshold": config.variance_threshold,
        "text_vectorizer": config.text_vectorizer,
        "text_word_ngrams": config.text_word_ngrams,
        "text_char_ngrams": config.text_char_ngrams,
        "text_max_terms": config.text_max_terms,
        "text_components": config.text_components,
        "trials": config.trials,
        "workers": config.workers,
        "time_budget": config.time_budget,
        "cv_folds": config.cv_folds,
        "registry": config.registry_uri(),
        "s3_endpoint": config.s3_endpoint,
        "min_improvement": config.min_improvement,
        "confidence": config.confidence,
        "roles": config.roles,
        "time_column": config.time_column,
        "series_columns": config.series_key,
        "horizon": config.horizon,
        "season": config.season,
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


class NothingToDo(Exception):
    """An incremental run found no new files: not an error, nothing was run (exit code 0)."""


def records_store(config: RunConfig) -> Any:
    """Where run records live: the --store prefix, else the runs folder."""
    return open_storage(config.store or str(Path(config.runs_dir).resolve()), config.s3_endpoint)


def preflight(config: RunConfig) -> Preflight:
    """Fail early on a source, schema file or store that cannot be used; settle the inputs."""
    import hashlib

    from components.core.registry import champion_pointer
    from components.core.source import incremental
    from components.core.source.files import source_fingerprint

    files: list[str] = []
    progress = None
    if config.incremental:
        current = incremental.listing(config.data, config.s3_endpoint)
        watermark = incremental.load_watermark(records_store(config), config.data)
        chosen = incremental.select(current, watermark, config.window)
        if not chosen.new:
            raise NothingToDo(
                f"no new files under {config.data!r} since run {watermark.get('last_run')!r} "
                f"({len(current)} file(s) already taken); nothing to train"
            )
        files = chosen.files
        progress = {
            "new_files": chosen.new,
            "window_files": chosen.window,
            "current": current,
            "watermark": watermark,
        }
    # fails early on a missing or non-table file, and on a store that cannot be reached
    fingerprint = source_fingerprint(config.data, config.s3_endpoint, read_options(config, files))
    if config.store:
        open_storage(config.store, config.s3_endpoint).keys("runs/none")
    schema_file, schema_sha = "", ""
    if config.schema:
        location = schema_location(config.schema)
        store, name = open_parent(location, config.s3_endpoint)
        if store.exists(name):
            schema_file = location
            schema_sha = hashlib.sha256(store.get_bytes(name)).hexdigest()
    pointer = champion_pointer(config.registry_uri(), config.s3_endpoint)
    champion = pointer["version"] if pointer else ""
    return Preflight(
        fingerprint=fingerprint,
        files=files,
        schema_file=schema_file,
        schema_version=schema_sha,
        reference_version=f"champion={champion};schema={schema_sha}",
        incremental=progress,
    )


def schema_location(schema: str) -> str:
    """--schema as an absolute path or an s3://bucket/key URI; BadInputError for a folder, a
    missing parent folder, or an S3 URI without a key."""
    from components.common.storage import S3_PREFIX, parse_s3_uri

    if schema.startswith(S3_PREFIX):
        _, key = parse_s3_uri(schema)
        if not key or schema.endswith("/"):
            raise BadInputError(f"--schema must name a file, s3://bucket/key.yaml; got {schema!r}")
        return schema
    if "://" in schema:
        raise BadInputError(f"--schema must be a local file or an s3:// URI; got {schema!r}")
    path = Path(schema).resolve()
    if path.is_dir():
        raise BadInputError(f"--schema must be a file, not a folder; got {schema!r}")
    if not path.parent.is_dir():
        raise BadInputError(f"--schema file's folder does not exist: {schema!r}")
    return str(path)


def write_schema_file(config: RunConfig, schema: dict[str, Any]) -> str:
    """The first run with --schema FILE writes the inferred schema there for the user to
    commit (never over an existing file)."""
    from components.core.schema import dump_schema

    location = schema_location(config.schema)
    store, name = open_parent(location, config.s3_endpoint)
    if not store.exists(name):
        store.put_bytes(dump_schema(schema, name).encode(), name)
    return location


def advance_watermark(config: RunConfig, progress: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Record the files this successful run took; return the summary's incremental entry."""
    from components.core.source import incremental

    chosen = incremental.Selection(progress["new_files"], progress["window_files"])
    updated = incremental.advance(progress["watermark"], progress["current"], chosen, run_id)
    uri = incremental.save_watermark(records_store(config), config.data, updated)
    return {"new_files": chosen.new, "window_files": chosen.window, "watermark": uri}


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

    from pipelines.training import training_pipeline

    checked = preflight(config)
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
        "data": {"source": config.data, "sha256": checked.fingerprint},
        "data_quality": None,
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
                task = training_pipeline(**pipeline_arguments(config, checked, run_id))
        except Exception as error:
            summary.update(
                status="failed",
                stages=tee.stage_list(),
                seconds=round(time.perf_counter() - started, 3),
            )
            if error_file.exists():
                problem = read_json(error_file)
                quality = problem.pop("quality", None)
                if quality is not None:  # the quality policy rejected the data
                    shutil.copyfile(problem["report"], run_dir / "data_quality.html")
                    problem["message"] = problem["message"].replace(
                        problem["report"], str(run_dir / "data_quality.html")
                    )
                    problem["report"] = str(run_dir / "data_quality.html")
                    summary["data_quality"] = compact_quality(quality)
                    summary["artifacts"] = {"data_quality": problem["report"]}
                summary["error"] = {"kind": "bad_input", **problem}
                write_json_atomic(run_dir / "summary.json", summary)
                if quality is not None:
                    raise DataRejected(problem["message"], problem) from error
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
        if config.schema and not checked.schema_file:
            summary["artifacts"]["schema_file"] = write_schema_file(
                config, read_json(task.outputs["schema"].path)
            )
        if checked.incremental is not None:
            summary["incremental"] = advance_watermark(config, checked.incremental, run_id)
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
        "data_quality": store.uri_of(f"{prefix}/data_quality.html"),
        "test_predictions": store.uri_of(f"{prefix}/test_predictions.parquet"),
        "logs": store.uri_of(f"{prefix}/logs"),
    }
    document = {**summary, "published": published}
    store.put_bytes(json.dumps(document, indent=2, default=str).encode(), f"{prefix}/summary.json")
    return published


def assemble(
    outputs: dict[str, Any], run_dir: Path, config: RunConfig, run_id: str
) -> dict[str, Any]:
    """Copy the run's artifacts into its folder and gather the summary's facts."""
    from components.core.registry import champion_pointer

    shutil.copytree(outputs["model"].path, run_dir / "model")
    shutil.copyfile(outputs["report"].path, run_dir / "report.html")
    shutil.copyfile(outputs["schema"].path, run_dir / "schema.json")
    shutil.copyfile(outputs["quality_report"].path, run_dir / "data_quality.html")
    shutil.copyfile(outputs["test_predictions"].path, run_dir / "test_predictions.parquet")
    quality = read_json(outputs["quality"].path)
    schema, best = read_json(run_dir / "schema.json"), read_json(outputs["best"].path)
    evaluation = read_json(outputs["evaluation"].path)
    data = dict(outputs["dataset"].metadata)
    for key in ("rows", "columns", "rows_read", "rows_dropped_missing_target", "duplicate_rows"):
        if key in data:
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
        "data_quality": compact_quality(quality),
        "registry": config.registry_uri(),
        "champion": pointer,
        "artifacts": {
            "model": str(run_dir / "model"),
            "report": str(run_dir / "report.html"),
            "schema": str(run_dir / "schema.json"),
            "data_quality": str(run_dir / "data_quality.html"),
            "test_predictions": str(run_dir / "test_predictions.parquet"),
            "logs": str(run_dir / "logs"),
        },
    }


def compact_quality(quality: dict[str, Any]) -> dict[str, Any]:
    """summary.json's data_quality: the verdict, every anomaly, drift without the per-bin
    detail (the full verdict and profile stay in the validate stage's artifact)."""
    drift = quality.get("drift", {})
    return {
        "verdict": quality["verdict"],
        "fail_on": quality.get("fail_on"),
        "reference": quality.get("reference"),
        "counts": quality.get("counts"),
        "anomalies": quality["anomalies"],
        "drift": {
            "verdict": drift.get("verdict"),
            "drifted_share": drift.get("drifted_share"),
            "top": drift.get("top", []),
            "columns": [
                {k: c.get(k) for k in ("column", "test", "psi", "p_value", "severity")}
                for c in drift.get("columns", [])
                if c.get("drifted")
            ],
        },
    }


@dataclass
class ValidationResult:
    quality: dict[str, Any]
    report: Path
    schema_file: str


def validate_only(config: RunConfig, report: Path) -> ValidationResult:
    """`stablepipe validate`: ingest and check the data in this process, no pipeline run.
    Writes the HTML report (and, with --schema naming a file that does not exist yet, the
    inferred schema there)."""
    from components.check_quality.logic import load_reference
    from components.check_quality.report import render_report
    from components.ingest.logic import ingest
    from tests.support.stages import check_data  # temporary: replaced by the stage entries

    checked = preflight(config)
    result = ingest(
        config.data, config.target, config.s3_endpoint, read_options(config, checked.files)
    )
    reference = load_reference(checked.schema_file, config.registry_uri(), config.s3_endpoint)
    schema, quality = check_data(
        result.frame,
        config.target,
        config.task,
        reference,
        config.fail_on,
        result.rows_dropped_missing_target,
    )
    partial = report.with_name(report.name + ".partial")
    partial.write_text(render_report(result.frame, schema, quality), encoding="utf-8")
    partial.replace(report)
    written = write_schema_file(config, schema) if config.schema and not checked.schema_file else ""
    return ValidationResult(quality, report, written)
