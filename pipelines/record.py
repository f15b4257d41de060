"""A run's records: its folder, `summary.json`, publishing to the store, the watermark.

<runs-dir>/<run_id>/
  summary.json     written last; its presence with status "succeeded" means the run is whole
  metrics.prom     the run's numbers as Prometheus metrics (components/core/prometheus.py)
  report.html      the evaluation report
  data_quality.html  the data-quality report
  schema.json      the inferred schema
  test_predictions.parquet  the model's predictions for the test split (as `predict` gives)
  model/           the fitted Pipeline and its card
  logs/pipeline.log  everything kfp.local and the tasks printed
  logs/stages.jsonl  one structured line per stage event

summary.json is written whole or not at all (a partial file replaced in one step), on success
and on failure; a failed run leaves the champion and the watermark as they were. When the
outputs cannot be gathered (a full disk), what was copied is removed again (`discard_outputs`):
a run folder without a succeeded summary holds its logs and at most metrics.prom and a failed
summary.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from components.common.readback import parse_json
from components.core.model_file import read_card
from components.core.prometheus import METRICS_FILE, run_metrics, write_metrics
from components.core.registry import Superseded, champion_pointer, is_published
from components.core.schema import TableSchema, read_table_schema
from components.core.source import KAFKA, source_kind
from pipelines.plan import Plan, model_entry, records_store, schema_location

SUMMARY = "summary.json"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object the run's stages wrote (bounded like every file read back)."""
    return dict(parse_json(Path(path).read_bytes(), repr(str(path))))


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write `path` whole or not at all: a partial file, replaced in one step; a write that
    fails (a full disk) leaves no partial file behind."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def superseded_verdict(verdict: dict[str, Any], champion: dict[str, Any] | None) -> dict[str, Any]:
    """evaluate said promote, but another run switched the champion before this one could
    (promote's compare-and-swap refused): the decision the summary and the CLI show."""
    reason = str(Superseded(verdict.get("champion_version"), champion))
    return {**verdict, "decision": "superseded", "reason": reason}


def compact_quality(quality: dict[str, Any]) -> dict[str, Any]:
    """summary.json's data_quality: the verdict, every anomaly, drift without the per-bin
    detail (the full verdict and profile stay in the check_quality stage's artifact)."""
    drift = quality.get("drift", {})
    compact = {
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
    if quality.get("environment") == "serving":
        compact["environment"] = "serving"
        compact["skipped_checks"] = quality.get("skipped_checks", [])
    return compact


class RunRecord:
    """The run folder and its summary, from the start of a run to its end."""

    def __init__(self, plan: Plan) -> None:
        config = plan.config
        self.plan = plan
        self.run_dir = Path(config.runs_dir).resolve() / plan.run_id
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True)
        self.started = time.perf_counter()
        self.ended: float | None = None  # Unix time
        self.summary: dict[str, Any] = {
            "run_id": plan.run_id,
            "status": "running",
            "target": config.target,
            "task": None if config.task == "auto" else config.task,
            "data": data_facts(plan),
            "data_quality": None,
            # filled in by a run that succeeds; a failed run keeps the keys, empty
            "best": None,
            "metrics": {"test": {}},
            "promoted": False,
            "artifacts": {},
            "config": config.as_dict(),
            "started_at": now(),
        }

    @property
    def error_file(self) -> Path:
        """Where a stage leaves the user's one line when it refuses its input."""
        return self.log_dir / "error.json"

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def failed(self, stages: list[dict[str, Any]], error: dict[str, Any]) -> None:
        """Record a failed run: its stages and the error (kind bad_input or internal)."""
        self.summary.update(status="failed", stages=stages, seconds=self.seconds(), error=error)
        with contextlib.suppress(OSError):  # a full disk: the summary matters more
            self.write_metrics()
        write_json_atomic(self.run_dir / SUMMARY, self.summary)

    def stage_events(self) -> list[dict[str, Any]]:
        """The stages' structured events (logs/stages.jsonl), in order; a torn line is left
        out."""
        path = self.log_dir / "stages.jsonl"
        events = []
        for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return [event for event in events if isinstance(event, dict)]

    def metrics(self, labels: dict[str, str]) -> Any:
        """The run's Prometheus metrics (a CollectorRegistry), from the summary as it stands;
        the run ended when they were first made (the file and the push say the same time)."""
        if self.ended is None:
            self.ended = time.time()
        return run_metrics(self.summary, self.stage_events(), labels, now=self.ended)

    def write_metrics(self) -> None:
        """metrics.prom in the run folder, labelled with the model's registry entry."""
        entry = model_entry(self.plan.config)
        write_metrics(self.run_dir / METRICS_FILE, self.metrics({"model": entry}))

    def interrupted(self, stages: list[dict[str, Any]], signal_name: str) -> None:
        """Record a run stopped by SIGINT or SIGTERM: the stages that finished keep their
        status, the ones stopped midway are `interrupted`; nothing was promoted or published
        and the watermark did not move, so a rerun resumes from the task cache."""
        stopped = [
            {**stage, "status": "interrupted"}
            if stage["status"] in ("running", "failed")
            else stage
            for stage in stages
        ]
        self.summary.update(
            status="interrupted",
            stages=stopped,
            seconds=self.seconds(),
            error={"kind": "interrupted", "message": f"stopped by {signal_name}"},
        )
        with contextlib.suppress(OSError):
            self.write_metrics()
        write_json_atomic(self.run_dir / SUMMARY, self.summary)

    def discard_outputs(self) -> None:
        """Remove what gathering the outputs copied into the run folder (all but `logs/`): a
        run whose records could not be completed (a full disk) keeps no half-copied model or
        report, and the space they took is free for its failed summary."""
        if not self.run_dir.is_dir():
            return
        for entry in self.run_dir.iterdir():
            if entry == self.log_dir:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def rejected(self, problem: dict[str, Any]) -> dict[str, Any]:
        """A stage's bad-input problem, recorded; when the quality policy rejected the data,
        its report is kept in the run folder (the message names that copy)."""
        quality = problem.pop("quality", None)
        if quality is not None:
            kept = self.run_dir / "data_quality.html"
            shutil.copyfile(problem["report"], kept)
            problem["message"] = problem["message"].replace(problem["report"], str(kept))
            problem["report"] = str(kept)
            self.summary["data_quality"] = compact_quality(quality)
            self.summary["artifacts"] = {"data_quality": str(kept)}
        return {"problem": problem, "quality": quality}

    def succeeded(self, outputs: dict[str, Any], stages: list[dict[str, Any]]) -> None:
        """Gather the outputs into the run folder, write the schema file a first run with
        --schema writes, advance the watermark, publish, and write the summary last."""
        plan, config = self.plan, self.plan.config
        self.summary.update(self.assemble(outputs))
        self.summary.update(
            stages=stages, seconds=self.seconds(), finished_at=now(), status="succeeded"
        )
        self.summary["artifacts"]["metrics"] = str(self.run_dir / METRICS_FILE)
        self.write_metrics()
        if config.schema and not plan.schema_file:
            self.summary["artifacts"]["schema_file"] = write_schema_file(
                config.schema, config.s3_endpoint, read_table_schema(outputs["table_schema"].path)
            )
        if plan.incremental is not None:
            self.summary["incremental"] = advance_watermark(plan)
        if config.store:
            self.summary["published"] = self.publish()
        write_json_atomic(self.run_dir / SUMMARY, self.summary)

    def assemble(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """Copy the run's artifacts into its folder and gather the summary's facts."""
        run_dir, plan = self.run_dir, self.plan
        shutil.copytree(outputs["model"].path, run_dir / "model")
        copies = {
            "report": ("report", "report.html"),
            "schema": ("table_schema", "schema.json"),
            "data_quality": ("quality_report", "data_quality.html"),
            "test_predictions": ("test_predictions", "test_predictions.parquet"),
        }
        for output, name in copies.values():
            shutil.copyfile(outputs[output].path, run_dir / name)
        quality = read_json(outputs["quality"].path)
        schema, best = read_json(run_dir / "schema.json"), read_json(outputs["best"].path)
        evaluation = read_json(outputs["evaluation"].path)
        data = dict(outputs["dataset"].metadata)
        for key in (
            "rows",
            "columns",
            "rows_read",
            "rows_dropped_missing_target",
            "duplicate_rows",
            "unreadable_records",
        ):
            if key in data:
                data[key] = int(data[key])
        if "kafka" in data:  # metadata numbers come back as floats
            data["kafka"] = [
                {k: v if k == "topic" else int(v) for k, v in entry.items()}
                for entry in data["kafka"]
            ]
        pointer = champion_pointer(plan.registry, plan.config.s3_endpoint)
        verdict = evaluation["verdict"]
        promoted = verdict["decision"] == "promote" and is_published(
            plan.registry, plan.run_id, plan.config.s3_endpoint
        )
        if verdict["decision"] == "promote" and not promoted:
            verdict = superseded_verdict(verdict, pointer)
        card = read_card(run_dir / "model")
        refitted = card.get("refit")
        return {
            "task": schema["task"],
            "data": data,
            "best": best,
            "metrics": evaluation["metrics"],
            "promoted": promoted,
            "promotion": verdict,
            # the model served: fitted on all rows (refit), or the one the test metrics measured
            "served": {
                "rows": card["training_rows"],
                "refit": bool(refitted),
                "judged_rows": refitted["judged_rows"] if refitted else card["training_rows"],
            },
            "data_quality": compact_quality(quality),
            "registry": plan.registry,
            "champion": pointer,
            "artifacts": {
                "model": str(run_dir / "model"),
                **{key: str(run_dir / name) for key, (_, name) in copies.items()},
                "logs": str(self.log_dir),
            },
        }

    def publish(self) -> dict[str, str]:
        """Upload the run folder to `<store>/runs/<run_id>/`, summary.json last (its presence
        means the run's outputs are all there); return the published artifacts' URIs."""
        from components.common.storage import open_storage

        config = self.plan.config
        store = open_storage(config.store, config.s3_endpoint)
        prefix = f"runs/{self.plan.run_id}"
        for path in sorted(p for p in self.run_dir.rglob("*") if p.is_file()):
            relative = path.relative_to(self.run_dir).as_posix()
            if relative != SUMMARY:
                store.put_file(path, f"{prefix}/{relative}")
        published = {
            name: store.uri_of(f"{prefix}/{key}")
            for name, key in [
                ("summary", SUMMARY),
                ("model", "model"),
                ("report", "report.html"),
                ("schema", "schema.json"),
                ("data_quality", "data_quality.html"),
                ("test_predictions", "test_predictions.parquet"),
                ("metrics", METRICS_FILE),
                ("logs", "logs"),
            ]
        }
        document = {**self.summary, "published": published}
        store.put_bytes(json.dumps(document, indent=2, default=str).encode(), f"{prefix}/{SUMMARY}")
        return published


def write_schema_file(schema_setting: str, s3_endpoint: str, schema: TableSchema) -> str:
    """The first run with --schema FILE writes the inferred schema there for the user to
    commit (never over an existing file)."""
    from components.common.storage import open_parent
    from components.core.schema import dump_schema

    location = schema_location(schema_setting)
    store, name = open_parent(location, s3_endpoint)
    if not store.exists(name):
        store.put_bytes(dump_schema(schema, name).encode(), name)
    return location


def data_facts(plan: Plan) -> dict[str, Any]:
    """The summary's `data`: the source and its fingerprint; for a Kafka topic, the offsets
    read per partition (`kafka`), the data's lineage."""
    facts: dict[str, Any] = {"source": plan.config.data, "sha256": plan.fingerprint}
    if source_kind(plan.config.data) == KAFKA:
        from components.core.source import kafka

        facts["kafka"] = kafka.lineage(plan.config.data, tuple(plan.files))
    return facts


def advance_watermark(plan: Plan) -> dict[str, Any]:
    """Record the files this successful run took (a Kafka topic: commit the consumer group's
    offsets); return the summary's incremental entry."""
    from components.core.source import incremental

    progress = plan.incremental or {}
    if "kafka_group" in progress:
        from components.core.source import kafka

        kafka.commit(plan.config.data, progress["kafka_group"], progress["kafka_ends"])
        return {
            "group": progress["kafka_group"],
            "new_records": progress["new_records"],
            "window_records": progress["window_records"],
            "skipped_by_retention": progress["skipped_by_retention"],
            "committed": {str(p): end for p, end in sorted(progress["kafka_ends"].items())},
        }
    chosen = incremental.Selection(progress["new_files"], progress["window_files"])
    updated = incremental.advance(progress["watermark"], progress["current"], chosen, plan.run_id)
    uri = incremental.save_watermark(records_store(plan.config), plan.config.data, updated)
    return {"new_files": chosen.new, "window_files": chosen.window, "watermark": uri}
