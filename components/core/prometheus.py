"""A run's numbers as Prometheus metrics: the `metrics.prom` file of a run folder and the push to
a Pushgateway (the Prometheus convention for batch jobs, which a scrape cannot catch alive).

The metrics are made from what the run recorded (its summary and its stage events), named by
Prometheus' conventions (a `stablepipe_` prefix, base units, `_seconds`), and labelled only by
bounded values: the model's registry entry, the stage, a severity, a metric's name. A run id is
never a label (every run would be a new series).

Every run has the run and stage families (`run_*`, `stage_*`, `rows`, `promoted`). The others
are measured by a stage, and a run that stopped before it has none of them: the anomalies and
drift (check_quality), the search's (collect), the test metrics (evaluate). A push is a POST,
which replaces in the group `{job="stablepipe", model=...}` the families it holds and keeps the
others: after a failed run the gateway still shows the last measured test metrics and
`stablepipe_last_success_timestamp_seconds` (sent only by a run that succeeded), so an alert can
say "no success for a day", and `stablepipe_run_failed` says the last run failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile

from components.common.webhooks import attempted

JOB = "stablepipe"
METRICS_FILE = "metrics.prom"
NAMESPACE = "stablepipe"
# A stage's rows in and out, as the fields of its stage event (summed when several).
ROWS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ingest": (("rows_read",), ("rows",)),
    "validate": (("rows",), ("rows",)),
    "split": (("train_rows", "test_rows"), ("train_rows",)),
    "preprocess": (("rows",), ("rows",)),
    "train": (("rows",), ("rows",)),
    "refit": (("rows",), ("rows",)),
}
SEVERITIES = ("info", "warning", "error")
TRIAL_STATES = ("complete", "pruned", "failed")
PUSH_TIMEOUT_SECONDS = 10.0
NAN = float("nan")


def number(value: Any) -> float:
    """A recorded value as a sample: NaN when the run did not reach it."""
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else NAN


def stage_rows(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """{(stage, "in"|"out"): rows} from the stages' events (the last event naming them)."""
    rows: dict[tuple[str, str], float] = {}
    for event in events:
        fields = ROWS.get(str(event.get("stage")))
        if fields is None:
            continue
        for kind, names in zip(("in", "out"), fields, strict=True):
            if all(isinstance(event.get(name), int) for name in names):
                rows[(str(event["stage"]), kind)] = float(sum(event[name] for name in names))
    return rows


class RunMetrics:
    """The metric families of one run, in their own registry."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.registry = CollectorRegistry()
        self.labels = dict(labels)
        self.made: dict[str, Gauge] = {}

    def gauge(self, name: str, help: str, value: float, **labels: str) -> None:
        """Set one sample of the family `stablepipe_<name>` (made on first use)."""
        if name not in self.made:
            self.made[name] = Gauge(
                name, help, [*self.labels, *labels], namespace=NAMESPACE, registry=self.registry
            )
        family = self.made[name]
        (family.labels(**self.labels, **labels) if self.labels or labels else family).set(value)


def final_status_metrics(
    succeeded: bool, labels: Mapping[str, str], now: float | None = None
) -> RunMetrics:
    """The run families, from how the run ended: `run_failed`, `run_timestamp_seconds` and,
    when it succeeded, `last_success_timestamp_seconds`. All a cluster run's exit step knows
    (its final state, not the stages' numbers)."""
    metrics = RunMetrics(labels)
    finished = time.time() if now is None else now
    metrics.gauge("run_timestamp_seconds", "When the run ended (Unix time).", finished)
    if succeeded:
        metrics.gauge(
            "last_success_timestamp_seconds",
            "When a run last succeeded (Unix time); kept by a failed run's push.",
            finished,
        )
    metrics.gauge(
        "run_failed", "1 when the run failed or was stopped, else 0.", float(not succeeded)
    )
    return metrics


def run_metrics(
    summary: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    labels: Mapping[str, str],
    now: float | None = None,
) -> CollectorRegistry:
    """The metrics of a finished run (succeeded, failed or interrupted) from its summary and its
    stage events; `labels` go on every sample (the file's `model`; a push puts them in the
    group instead)."""
    metrics = final_status_metrics(summary.get("status") == "succeeded", labels, now)
    gauge = metrics.gauge
    gauge("run_duration_seconds", "The run's wall time.", number(summary.get("seconds")))
    stages = list(summary.get("stages") or [])
    error_kind = str((summary.get("error") or {}).get("kind", "internal"))
    for stage in stages:
        name = str(stage.get("name"))
        if stage.get("status") in ("succeeded", "cached", "failed", "interrupted"):
            gauge(
                "stage_duration_seconds",
                "A stage's wall time in this run (a cached stage: the time to look it up).",
                number(stage.get("seconds")),
                stage=name,
            )
        failed = stage.get("status") in ("failed", "interrupted")
        gauge(
            "stage_failed",
            "1 for the stage the run failed or was stopped in (kind: bad_input, no_space, "
            "interrupted, internal), else 0.",
            float(failed),
            stage=name,
            kind=error_kind if failed else "",
        )
    for (stage_name, kind), rows in sorted(stage_rows(events).items()):
        gauge("rows", "Rows a stage took in and gave out.", rows, stage=stage_name, kind=kind)
    quality = summary.get("data_quality")
    if quality:  # the run reached the quality check
        counts = quality.get("counts") or {}
        for severity in SEVERITIES:
            gauge(
                "anomalies",
                "Data-quality anomalies found, by severity.",
                number(counts.get(severity)),
                severity=severity,
            )
        gauge(
            "drift_share",
            "The share of columns that drifted from the reference (NaN without one).",
            number((quality.get("drift") or {}).get("drifted_share")),
        )
    best = summary.get("best")
    if best:  # the run finished its search
        gauge("cv_score", "The best trial's cross-validated score.", number(best.get("cv_score")))
        trials = best.get("trials") or {}
        for state in TRIAL_STATES:
            gauge(
                "search_trials",
                "The search's trials, by final state.",
                number(trials.get(state)),
                state=state,
            )
        gauge(
            "search_cpu_seconds",
            "CPU time the search's trials used.",
            number(trials.get("cpu_seconds")),
        )
    test = (summary.get("metrics") or {}).get("test") or {}
    for metric, value in sorted(test.items()):  # the run evaluated its model
        gauge(
            "test_metric",
            "The model's score on the held-out test rows, by metric.",
            number(value),
            metric=str(metric),
        )
    gauge(
        "promoted",
        "1 when the run's model became the champion, else 0.",
        float(bool(summary.get("promoted"))),
    )
    return metrics.registry


def write_metrics(path: Path, registry: CollectorRegistry) -> None:
    """The text exposition format, written whole (a temporary file renamed)."""
    write_to_textfile(str(path), registry)


def push_metrics(url: str, registry: CollectorRegistry, grouping: Mapping[str, str]) -> str:
    """Push to the Pushgateway at `url` (POST, the group `job` + `grouping`; see `attempted`);
    '' when pushed, else the one-line reason it was not."""
    group = dict(grouping)
    return attempted(
        lambda: pushadd_to_gateway(
            url, job=JOB, registry=registry, grouping_key=group, timeout=PUSH_TIMEOUT_SECONDS
        )
    )
