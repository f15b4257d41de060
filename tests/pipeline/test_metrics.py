"""A run's metrics in Prometheus: `stablepipe run --pushgateway URL` pushes them to a real
Pushgateway (Debian's prometheus-pushgateway, installed by `make test`), every run writes them
to metrics.prom, and a gateway that is down changes nothing about the run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pipeline.conftest import QUICK, latest_summary, one_class_csv, stablepipe
from tests.support import pushgateway as gateway_server
from tests.support.seaweedfs import free_ports

MODEL = ("--model-name", "metrics-demo")
GROUP = {"job": "stablepipe", "model": "metrics-demo", "instance": ""}


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gateway_server.Pushgateway]:
    server = gateway_server.start(tmp_path_factory.mktemp("pushgateway"))
    yield server
    server.stop()


Key = tuple[str, frozenset]


def comparable(value: float) -> float | str:
    return "NaN" if math.isnan(value) else value


def group_values(server: gateway_server.Pushgateway) -> dict[Key, float | str]:
    """The stablepipe samples of the test's group, keyed by name and the labels beyond the
    group's (NaN as a string, to compare)."""
    return {
        (name, frozenset((k, v) for k, v in labels.items() if k not in GROUP)): comparable(value)
        for name, labels, value in server.samples()
        if name.startswith("stablepipe_") and all(labels.get(k) == v for k, v in GROUP.items())
    }


def file_values(run_dir: Path) -> dict[Key, float | str]:
    text = (run_dir / "metrics.prom").read_text()
    return {
        (s.name, frozenset((k, v) for k, v in s.labels.items() if k != "model")): comparable(
            s.value
        )
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_runs_push_their_metrics_and_a_failure_keeps_the_last_success(
    pushgateway: gateway_server.Pushgateway, tmp_path: Path
) -> None:
    done = stablepipe("run", *QUICK, *MODEL, "--pushgateway", pushgateway.url, cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert f"metrics pushed to {pushgateway.url}" in done.stderr
    summary = latest_summary(tmp_path / "runs")
    pushed = group_values(pushgateway)
    # the gateway serves what the run folder's file holds, under the group's labels
    run_dir = tmp_path / "runs" / summary["run_id"]
    assert pushed == file_values(run_dir)
    assert summary["artifacts"]["metrics"] == str(run_dir / "metrics.prom")
    roc_auc = pushed[("stablepipe_test_metric", frozenset({("metric", "roc_auc")}))]
    assert roc_auc == pytest.approx(summary["metrics"]["test"]["roc_auc"])
    assert pushed[("stablepipe_run_failed", frozenset())] == 0
    assert pushed[("stablepipe_promoted", frozenset())] == 1
    rows_in = pushed[("stablepipe_rows", frozenset({("stage", "ingest"), ("kind", "in")}))]
    assert rows_in == summary["data"]["rows_read"] == 569
    durations = {
        dict(labels)["stage"]: v
        for (name, labels), v in pushed.items()
        if name == "stablepipe_stage_duration_seconds"
    }
    assert set(durations) == {s["name"] for s in summary["stages"] if s["status"] != "skipped"}
    last_success = pushed[("stablepipe_last_success_timestamp_seconds", frozenset())]

    # a run of the same model that fails in a stage: the gateway says so, and keeps the last
    # success and the last measured test metrics
    one_class_csv(tmp_path / "one_class.csv")
    failed = stablepipe(
        "run", "--data", "one_class.csv", "--target", "target", *QUICK, *MODEL,
        "--pushgateway", pushgateway.url,
        cwd=tmp_path,
    )  # fmt: skip
    assert failed.code == 2, failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("error: target 'target' has a single")
    after = group_values(pushgateway)
    assert after[("stablepipe_run_failed", frozenset())] == 1
    assert after[("stablepipe_stage_failed", frozenset({("stage", "validate"),
                                                         ("kind", "bad_input")}))] == 1  # fmt: skip
    assert after[("stablepipe_last_success_timestamp_seconds", frozenset())] == last_success
    assert after[("stablepipe_test_metric", frozenset({("metric", "roc_auc")}))] == roc_auc
    assert after[("stablepipe_promoted", frozenset())] == 0
    stages = {dict(k)["stage"] for n, k in after if n == "stablepipe_stage_duration_seconds"}
    assert stages == {"ingest", "validate"}  # the failed run's stages only


def test_a_gateway_that_is_down_changes_nothing_about_the_run(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    done = stablepipe("run", *QUICK, "--pushgateway", url, cwd=tmp_path)
    assert done.code == 0, done.stderr
    warning = f"warning: the run's metrics were not pushed to {url}: "
    assert [line for line in done.stderr.splitlines() if line.startswith(warning)], done.stderr
    summary = latest_summary(tmp_path / "runs")
    assert summary["status"] == "succeeded" and summary["promoted"] is True
    assert (tmp_path / "runs" / summary["run_id"] / "metrics.prom").is_file()


def test_a_pushgateway_that_is_not_an_http_url_is_refused(tmp_path: Path) -> None:
    done = stablepipe("run", "--pushgateway", "pushgateway:9091", cwd=tmp_path)
    assert done.code == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: --pushgateway must be an http:// or https:// URL (http://host:9091); "
        "got 'pushgateway:9091'"
    )
    assert not (tmp_path / "runs").exists()
    json.dumps(done.stderr)  # one printable line
