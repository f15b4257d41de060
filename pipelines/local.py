"""Running locally: the training pipeline under kfp.local, or the data stages in this process.

`LocalExecutor` runs a compiled-in-memory pipeline under kfp.local's SubprocessRunner: each task
is a child process of the current environment (the same code the cluster's image runs). It
shows one line per stage as kfp.local reports it, keeps everything the tasks print in the run's
log, and turns a failed task into the error the stage meant: a stage that refused its input
leaves its one line in the run's error file. The executor is an object with one method, `run`,
so that another (one that keeps warm worker processes, say) can stand in for it.

`run_locally` is `stablepipe run`: plan, execute, record. `validate_locally` is `stablepipe
validate`: the ingest, validate and check_quality stages' own entry functions, in this process.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TextIO

from components.common.errors import BadInputError, DataRejected
from components.common.settings import RunConfig
from components.common.stage import ERROR_FILE_ENV, LOG_DIR_ENV, RUN_ID_ENV
from components.core.notify import NOTIFY_ENV, failure_message, post_message, shown_url
from components.core.prometheus import JOB, push_metrics
from pipelines.interrupts import Interrupted, stoppable
from pipelines.plan import Plan, model_entry, pipeline_arguments, plan_run
from pipelines.record import RunRecord, read_json, write_schema_file

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
CACHE_HIT = re.compile(r"Task '?([\w-]+)'? cache hit")
RETRYING = re.compile(r"Task '?([\w-]+)'? failed \(attempt \d+/\d+\)\. Retrying")
# A task's traceback as it prints it: `OSError: [Errno 28] No space left on device: 'path'`, or
# `'source' -> 'destination'` for a copy (the destination is what could not be written).
NO_SPACE = re.compile(
    rf"\[Errno {errno.ENOSPC}\] No space left on device(?:: '([^']*)'(?: -> '([^']*)')?)?"
)
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
    "refit",
    "evaluate",
    "promote",
)


class RunFailed(Exception):
    """The pipeline failed for a reason that is not the user's input (exit code 1)."""


def search_limits(config: RunConfig) -> str:
    """The search's limits as the run's first line says them: `60 s search`, or with a trial
    cap `60 s search or 30 trials`."""
    budget = f"{config.time_budget:g} s search"
    return f"{budget} or {config.trials} trials" if config.trials else budget


def no_space_path(error: BaseException | None) -> str | None:
    """The path a full disk refused in `error` or the exceptions it came from ('' when the
    error names none), or None when no disk was full."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return str(error.filename2 or error.filename or "")
        if match := NO_SPACE.search(str(error)):
            return match.group(2) or match.group(1) or ""
        error = error.__cause__ or error.__context__
    return None


# Below this much free space, a full disk that a task's error did not name is the runs folder.
NEARLY_FULL_BYTES = 1 << 20


def no_space_message(path: str, config: RunConfig) -> str:
    """The user's line for a full disk: the path it refused; when the error named none (a
    file's last buffered write refused on closing it), the runs folder if it is the full one."""
    if path:
        return f"no space left on device writing {path!r}"
    runs_dir = Path(config.runs_dir).resolve()
    with contextlib.suppress(OSError):
        if shutil.disk_usage(runs_dir).free < NEARLY_FULL_BYTES:
            return f"no space left on device under the runs folder {str(runs_dir)!r}"
    return "no space left on device (a task's write; see the log)"


def read_problem(error_file: Path) -> dict[str, Any] | None:
    """A stage's refusal from the error file, or None (no file, or one a full disk cut)."""
    try:
        return read_json(error_file) if error_file.exists() else None
    except (OSError, ValueError, BadInputError):
        return None


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
    # set once the run is stopping: the stopped tasks' endings are not shown as failures
    silenced: threading.Event = field(default_factory=threading.Event)
    # the first write the log refused (a full disk): the run goes on, the log stops there
    log_error: OSError | None = None
    # a path a task or the log could not write because the disk was full ('' when unnamed)
    no_space: str | None = None
    # kfp.local runs the ParallelFor's tasks on threads that print at the same time.
    _lock: Any = field(default_factory=threading.RLock)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            if self.log_error is None:
                try:
                    self.log.write(text)
                except OSError as error:
                    self.log_failed(error)
            self._buffer += text
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                self.observe(ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self.log_error is None:
                try:
                    self.log.flush()
                except OSError as error:
                    self.log_failed(error)

    def log_failed(self, error: OSError) -> None:
        """The log refused a write: keep the run going without it, and remember why."""
        self.log_error = error
        if error.errno == errno.ENOSPC and self.no_space is None:
            self.no_space = str(error.filename or getattr(self.log, "name", ""))

    def observe(self, line: str) -> None:
        now = time.perf_counter()
        if self.no_space is None and (space := NO_SPACE.search(line)):
            self.no_space = space.group(2) or space.group(1) or ""
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
        elif match := RETRYING.search(line):
            # the same task again, not another worker: its next start is not counted
            timing = self.stages.setdefault(match.group(1).replace("-", "_"), StageTiming(""))
            timing.tasks -= 1
            timing.status = "running"
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
        if self.silenced.is_set():
            return
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


@contextlib.contextmanager
def kfp_messages_to(stream: io.TextIOBase) -> Iterator[None]:
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
def print_restored() -> Iterator[None]:
    """Give `builtins.print` back as it was. kfp.local indents a task's output by swapping
    `builtins.print` for a wrapper and back; its DAG orchestrator runs tasks in threads, so two
    tasks' swaps interleave and the wrapper can stay installed after the run, indenting every
    later print of the process (a notebook, a second run, the tests)."""
    saved = builtins.print
    try:
        yield
    finally:
        builtins.print = saved


@contextlib.contextmanager
def task_environment(run_id: str, log_dir: Path, error_file: Path) -> Iterator[None]:
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


@dataclass
class Execution:
    """What an executor hands back: the pipeline's outputs and each stage's timing."""

    outputs: dict[str, Any]
    stages: list[dict[str, Any]]


class ExecutionFailed(Exception):
    """A task failed: `stages` as far as they got, `problem` the stage's own one line when it
    refused its input (else None), `cause` what the executor saw."""

    def __init__(
        self,
        stages: list[dict[str, Any]],
        problem: dict[str, Any] | None,
        cause: Exception,
        no_space: str | None = None,
    ) -> None:
        super().__init__(ANSI.sub("", str(cause)))
        self.stages, self.problem, self.cause = stages, problem, cause
        # the path a full disk refused ('' when unnamed), None when no disk was full
        self.no_space = no_space if no_space is not None else no_space_path(cause)


class Executor(Protocol):
    def run(
        self, pipeline: Callable[..., Any], arguments: dict[str, Any], record: RunRecord
    ) -> Execution: ...


@dataclass
class LocalExecutor:
    """kfp.local's SubprocessRunner in the current environment; the task cache and pipeline
    root under `<runs-dir>/.kfp/` (shared by runs, so a rerun resumes)."""

    terminal: TextIO = sys.stderr

    def run(
        self, pipeline: Callable[..., Any], arguments: dict[str, Any], record: RunRecord
    ) -> Execution:
        from kfp import local

        config = record.plan.config
        kfp_root = Path(config.runs_dir).resolve() / ".kfp"
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(kfp_root / "outputs"),
            enable_caching=config.cache,
            cache_root=str(kfp_root / "cache"),
        )
        log_path = record.log_dir / "pipeline.log"
        try:
            log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed below, guarded)
        except OSError as error:
            raise ExecutionFailed([], None, error) from error
        tee = ProgressTee(log=log, terminal=self.terminal)
        try:
            try:
                with (
                    stoppable(tee.silenced),
                    print_restored(),
                    task_environment(record.plan.run_id, record.log_dir, record.error_file),
                    contextlib.redirect_stdout(tee),
                    kfp_messages_to(tee),
                    warnings.catch_warnings(),
                ):
                    # The component image is the project's own; locally the same code runs in
                    # this environment, which is what kfp's "non-Python base image" warning is
                    # about.
                    warnings.filterwarnings(
                        "ignore", message="You may be attemping", category=RuntimeWarning
                    )
                    task = pipeline(**arguments)
            except Interrupted as stop:
                stop.stages = tee.stage_list()
                raise
            except Exception as error:
                problem = read_problem(record.error_file)
                raise ExecutionFailed(tee.stage_list(), problem, error, tee.no_space) from error
        finally:
            try:
                log.close()  # flushes what is buffered: a full disk may refuse it
            except OSError as error:
                tee.log_failed(error)
        return Execution(dict(task.outputs), tee.stage_list())


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def run_locally(
    config: RunConfig, executor: Executor | None = None, terminal: TextIO = sys.stderr
) -> RunResult:
    """`stablepipe run`: plan the run, run the training pipeline, record it, and push its metrics
    when --pushgateway is set (a push that fails is a warning: the run's result stands).

    Raises BadInputError (exit 2) for data a stage refused, DataRejected (exit 4) for data the
    quality policy rejected and RunFailed (exit 1) for anything else; in each case summary.json
    says "failed" and the champion and the watermark are untouched.
    """
    plan = plan_run(config)
    try:
        record = RunRecord(plan)
    except OSError as error:
        space = no_space_path(error)
        reason = no_space_message(space, config) if space is not None else str(error)
        raise RunFailed(f"the run's folder could not be created: {reason}") from error
    print(
        f"stablepipe run {plan.run_id}: {config.data} -> {config.target!r} "
        f"({search_limits(config)}, {config.workers} workers)",
        file=terminal,
        flush=True,
    )
    executor = executor or LocalExecutor(terminal)
    try:
        return run_and_record(plan, record, executor, terminal)
    except (BadInputError, RunFailed) as error:  # exit 2 or 4, exit 1: not an interrupt
        never_fatal("the failure alert", terminal, partial(notify_failure, record, error, terminal))
        raise
    finally:
        if config.pushgateway and record.summary["status"] != "running":
            push = partial(push_run_metrics, record, config.pushgateway, terminal)
            never_fatal("the run's metrics", terminal, push)


def never_fatal(what: str, terminal: TextIO, call: Callable[[], None]) -> None:
    """`call()`, whose failure is one warning line: an alert or a push never changes the
    run's result."""
    try:
        call()
    except Exception as error:
        terminal.write(f"warning: {what} could not be sent: {type(error).__name__}\n")


def run_and_record(
    plan: Plan, record: RunRecord, executor: Executor, terminal: TextIO
) -> RunResult:
    """Run the training pipeline and record how it ended (see `run_locally`)."""
    from pipelines.training import training_pipeline

    config = plan.config
    try:
        execution = executor.run(training_pipeline, pipeline_arguments(plan), record)
    except Interrupted as stop:
        with contextlib.suppress(OSError):  # a full disk: the exit code still says it all
            record.interrupted(stop.stages, signal_name=str(stop))
        raise
    except ExecutionFailed as failure:
        if failure.problem is not None:
            quality = failure.problem.get("quality")
            try:
                problem = record.rejected(failure.problem)["problem"]
            except OSError:  # a full disk: the report stays where the stage wrote it
                problem = failure.problem
            record_failure(record, failure.stages, {"kind": "bad_input", **problem})
            if quality is not None:
                raise DataRejected(problem["message"], problem) from failure.cause
            raise BadInputError(problem["message"]) from failure.cause
        if failure.no_space is not None:
            message = no_space_message(failure.no_space, config)
            kind = "no_space"
        else:
            message, kind = str(failure), "internal"
        unrecorded = record_failure(record, failure.stages, {"kind": kind, "message": message})
        raise RunFailed(
            f"{message} (run {plan.run_id}; log: {record.log_dir / 'pipeline.log'}){unrecorded}"
        ) from failure.cause
    try:
        record.succeeded(execution.outputs, execution.stages)
    except Exception as error:
        # nothing half-gathered stays in the run folder (and its space is free again)
        record.discard_outputs()
        space = no_space_path(error)
        reason = no_space_message(space, config) if space is not None else str(error)
        kind = "no_space" if space is not None else "internal"
        promoted = promoted_before(plan)
        error_entry = {"kind": kind, "message": reason + promoted}
        unrecorded = record_failure(record, execution.stages, error_entry)
        raise RunFailed(
            f"the pipeline finished but its outputs could not be gathered or published: "
            f"{reason} (run {plan.run_id}){promoted}{unrecorded}"
        ) from error
    return RunResult(record.run_dir, record.summary)


def notify_failure(record: RunRecord, error: Exception, terminal: TextIO) -> None:
    """Post the failure alert to --notify-url (or STABLEPIPE_NOTIFY_URL) when one is set; a
    webhook that is down or refuses gets one warning line."""
    from pipelines.training import PIPELINE_NAME

    url = record.plan.config.notify_url or os.environ.get(NOTIFY_ENV, "").strip()
    if not url:
        return
    code = 4 if isinstance(error, DataRejected) else 2 if isinstance(error, BadInputError) else 1
    stages = record.summary.get("stages") or []
    failed = [s["name"] for s in stages if s.get("status") == "failed"]
    published = record.summary.get("published") or {}
    message = failure_message(
        run_id=record.plan.run_id,
        pipeline=PIPELINE_NAME,
        model=model_entry(record.plan.config),
        stage=failed[0] if failed else "",
        exit_code=code,
        reason=str(error),
        logs=published.get("logs") or str(record.log_dir / "pipeline.log"),
    )
    problem = post_message(url, message)
    where = shown_url(url)
    if problem:
        terminal.write(f"warning: the failure alert was not posted to {where}: {problem}\n")
    else:
        terminal.write(f"  alert posted to {where}\n")
    terminal.flush()


def push_run_metrics(record: RunRecord, url: str, terminal: TextIO) -> None:
    """Push the run's metrics to the Pushgateway, grouped by the model's registry entry; a
    gateway that refuses or is down gets one warning line."""
    entry = model_entry(record.plan.config)
    problem = push_metrics(url, record.metrics({}), {"model": entry})
    if problem:
        terminal.write(f"warning: the run's metrics were not pushed to {url}: {problem}\n")
    else:
        terminal.write(f"  metrics pushed to {url} (job {JOB}, model {entry})\n")
    terminal.flush()


def record_failure(record: RunRecord, stages: list[dict[str, Any]], error: dict[str, Any]) -> str:
    """Write the failed summary; '' when written, else the clause the user's line ends with
    (a full disk may refuse even that: the run folder then has no summary.json, which says the
    run is not whole)."""
    try:
        record.failed(stages, error)
    except OSError as refused:
        space = no_space_path(refused)
        why = "no space left on device" if space is not None else os.strerror(refused.errno or 0)
        return f"; its summary.json could not be written either ({why.lower()})"
    return ""


def promoted_before(plan: Plan) -> str:
    """The clause telling that the promote stage had already made this run's model the
    champion (it runs inside the pipeline, before the outputs are gathered), else ''."""
    from components.core.registry import champion_pointer

    try:
        pointer = champion_pointer(plan.registry, plan.config.s3_endpoint)
    except Exception:  # the registry unreadable too: say nothing rather than guess
        return ""
    if pointer is not None and pointer.get("version") == plan.run_id:
        return f"; its model had already been promoted: the champion is now version {plan.run_id}"
    return ""


@dataclass
class ValidationResult:
    quality: dict[str, Any]
    report: Path
    schema_file: str
    target_given: bool


def validate_locally(
    config: RunConfig, report: Path, target_given: bool = True
) -> ValidationResult:
    """`stablepipe validate`: the ingest, validate and check_quality stages through their own
    entry functions, in this process (no pipeline run). Writes the HTML report (and, with
    --schema naming a file that does not exist yet, the inferred schema there). When the
    target came from the schema file (`target_given` false), data without the target column
    is validated as rows to score."""
    from components.check_quality.logic import judge_quality
    from components.common.frames import read_frame
    from components.ingest.logic import ingest_data
    from components.validate.logic import validate_data

    plan = plan_run(config)
    # the schema file only once it exists (a first run with --schema writes it), as the
    # pipeline is given it
    settings = replace(plan.config, schema=plan.schema_file)
    with tempfile.TemporaryDirectory(prefix="stablepipe-validate-") as scratch:
        table = Path(scratch) / "dataset.parquet"
        facts = ingest_data(table, settings, plan.files, target_optional=not target_given)
        frame = read_frame(table)
    schema = validate_data(frame, settings)
    try:
        quality = judge_quality(
            frame,
            schema,
            report,
            settings,
            rows_dropped_missing_target=facts["rows_dropped_missing_target"],
            duplicates=facts.get("duplicate_rows"),
            unreadable_records=facts.get("unreadable_records", 0),
        )
    except DataRejected as rejected:
        quality = rejected.details["quality"]
    config = plan.config
    written = ""
    if config.schema and not plan.schema_file:
        written = write_schema_file(config.schema, config.s3_endpoint, schema)
    return ValidationResult(quality, report, written, target_given)
