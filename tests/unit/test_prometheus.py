"""A run's Prometheus metrics (components/core/prometheus.py): what a succeeded and a failed run
report, in the text format Prometheus parses; the push is tested against a real Pushgateway in
tests/pipeline/test_metrics.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from components.common import webhooks
from components.core.prometheus import push_metrics, run_metrics, write_metrics

STAGES = ["ingest", "validate", "check_quality", "split", "preprocess", "tune", "evaluate"]


def samples(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, sorted labels): value} as a Prometheus server would parse the exposition."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[(f"stablepipe_{name}", tuple(sorted({"model": "churn", **labels}.items())))]


def succeeded_summary() -> dict[str, Any]:
    return {
        "run_id": "20261206-120000-abcdef",
        "status": "succeeded",
        "seconds": 81.5,
        "stages": [{"name": n, "status": "succeeded", "seconds": 1.5} for n in STAGES],
        "data_quality": {
            "verdict": "warn",
            "counts": {"info": 2, "warning": 1, "error": 0},
            "drift": {"verdict": "no_drift", "drifted_share": 0.125},
        },
        "best": {
            "metric": "roc_auc",
            "cv_score": 0.91,
            "trials": {"complete": 40, "pruned": 30, "failed": 1, "cpu_seconds": 110.0},
        },
        "metrics": {"test": {"roc_auc": 0.93, "log_loss": 0.2}},
        "promoted": True,
    }


EVENTS = [
    {"stage": "ingest", "event": "started"},
    {"stage": "ingest", "event": "ingested", "rows_read": 1000, "rows": 990},
    {"stage": "split", "event": "split", "train_rows": 792, "test_rows": 198},
    {"stage": "tune", "event": "searched", "trials_run": 12},  # no rows: none reported
]


def test_a_succeeded_run_reports_its_stages_quality_search_and_score() -> None:
    found = samples(run_metrics(succeeded_summary(), EVENTS, {"model": "churn"}, now=1.8e9))
    assert value(found, "run_failed") == 0
    assert value(found, "run_duration_seconds") == 81.5
    assert value(found, "run_timestamp_seconds") == value(
        found, "last_success_timestamp_seconds"
    ) == 1.8e9  # fmt: skip
    assert value(found, "stage_duration_seconds", stage="tune") == 1.5
    assert value(found, "stage_failed", stage="tune", kind="") == 0
    assert value(found, "rows", stage="ingest", kind="in") == 1000
    assert value(found, "rows", stage="ingest", kind="out") == 990
    assert value(found, "rows", stage="split", kind="in") == 990
    assert value(found, "rows", stage="split", kind="out") == 792
    assert not [key for key in found if key[0] == "stablepipe_rows" and "tune" in str(key)]
    assert value(found, "anomalies", severity="info") == 2
    assert value(found, "anomalies", severity="error") == 0
    assert value(found, "drift_share") == 0.125
    assert value(found, "cv_score") == 0.91
    assert value(found, "search_trials", state="pruned") == 30
    assert value(found, "search_cpu_seconds") == 110
    assert value(found, "test_metric", metric="roc_auc") == 0.93
    assert value(found, "promoted") == 1
    # bounded labels only: never the run id, whose every value would be a new series
    names = {name for key in found for name, _ in key[1]}
    assert names == {"model", "stage", "kind", "severity", "state", "metric"}
    assert all(key[0].startswith("stablepipe_") for key in found)


def test_a_failed_run_reports_where_it_failed_and_nothing_it_did_not_measure() -> None:
    summary = {
        "status": "failed",
        "seconds": 2.0,
        "stages": [
            {"name": "ingest", "status": "succeeded", "seconds": 0.9},
            {"name": "validate", "status": "failed", "seconds": 0.6},
            {"name": "check_quality", "status": "skipped", "seconds": 0.0},
        ],
        "error": {"kind": "bad_input", "message": "target 'y' has a single class"},
        "data_quality": None,
        "best": None,
        "metrics": {"test": {}},
        "promoted": False,
    }
    found = samples(run_metrics(summary, EVENTS[:2], {"model": "churn"}))
    assert value(found, "run_failed") == 1
    assert value(found, "stage_failed", stage="validate", kind="bad_input") == 1
    assert value(found, "stage_failed", stage="ingest", kind="") == 0
    assert ("stablepipe_stage_duration_seconds", (("model", "churn"), ("stage", "check_quality"))) \
        not in found  # fmt: skip
    families = {key[0] for key in found}
    # a push keeps the gateway's last measured values of these (and the last success)
    for kept in ("last_success_timestamp_seconds", "anomalies", "drift_share", "cv_score",
                 "search_trials", "test_metric"):  # fmt: skip
        assert f"stablepipe_{kept}" not in families
    assert value(found, "promoted") == 0


def test_a_first_run_without_a_reference_has_no_drift_share() -> None:
    summary = succeeded_summary()
    summary["data_quality"]["drift"] = {"verdict": "no_reference", "drifted_share": None}
    found = samples(run_metrics(summary, [], {"model": "churn"}))
    assert math.isnan(value(found, "drift_share"))


def test_the_file_is_the_text_format_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "metrics.prom"
    write_metrics(path, run_metrics(succeeded_summary(), EVENTS, {"model": "churn"}))
    text = path.read_text()
    assert "# TYPE stablepipe_test_metric gauge" in text
    assert 'stablepipe_test_metric{metric="roc_auc",model="churn"} 0.93' in text
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.prom"]  # no temporary left


def test_a_gateway_that_is_down_is_a_reason_after_bounded_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.seaweedfs import free_ports

    pauses: list[float] = []
    monkeypatch.setattr(webhooks.time, "sleep", pauses.append)
    (port,) = free_ports(1)
    registry = run_metrics(succeeded_summary(), [], {})
    reason = push_metrics(f"http://127.0.0.1:{port}", registry, {"model": "churn"})
    assert "refused" in reason.lower()
    assert len(pauses) == webhooks.TRIES - 1
