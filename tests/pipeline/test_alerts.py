"""Failure alerts of `stablepipe run --notify-url URL`, posted to a local HTTP server (a chat
webhook's stand-in: no Slack or Teams can run here): one message for a run that fails after it
started, none for a run that succeeds or never started, and a webhook that is down changes
nothing about the run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.pipeline.conftest import QUICK, latest_summary, one_class_csv, stablepipe
from tests.support.seaweedfs import free_ports
from tests.support.webhook import webhook

ONE_CLASS = ("--data", "one_class.csv", "--target", "target", *QUICK)


def test_a_run_that_fails_in_a_stage_posts_one_message(tmp_path: Path) -> None:
    one_class_csv(tmp_path / "one_class.csv")
    with webhook() as hook:
        failed = stablepipe("run", *ONE_CLASS, "--notify-url", hook.url, cwd=tmp_path)
        refused = stablepipe("run", "--data", "nowhere.csv", "--notify-url", hook.url, cwd=tmp_path)
    assert failed.code == 2, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: target 'target' has a single class")
    assert "  alert posted to http://127.0.0.1:" in failed.stderr
    assert refused.code == 2  # refused before it started: nothing to alert about
    (message,) = hook.received
    summary = latest_summary(tmp_path / "runs")
    assert message["run_id"] == summary["run_id"]
    assert message["pipeline"] == "stablepipe-training" and message["model"] == "target"
    assert message["stage"] == "validate" and message["exit_code"] == 2
    assert message["reason"] == last.removeprefix("error: ")
    assert Path(message["logs"]) == tmp_path / "runs" / summary["run_id"] / "logs/pipeline.log"
    assert message["text"].startswith(f"stablepipe stablepipe-training run {summary['run_id']}")
    # the webhook's URL is a credential: the run's records say only that one was set
    assert summary["config"]["notify_url"] == "(set)"
    assert "secret-key" not in json.dumps(summary)


def test_a_webhook_that_is_down_changes_nothing_and_a_success_posts_nothing(
    tmp_path: Path,
) -> None:
    """The URL also comes from STABLEPIPE_NOTIFY_URL (on the cluster, a Secret's)."""
    one_class_csv(tmp_path / "one_class.csv")
    (port,) = free_ports(1)
    down = f"http://127.0.0.1:{port}/hook"
    failed = stablepipe("run", *ONE_CLASS, "--notify-url", down, cwd=tmp_path)
    assert failed.code == 2, failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert lines[-1].startswith("error: target 'target' has a single class")
    assert f"warning: the failure alert was not posted to http://127.0.0.1:{port}/...: " in (
        failed.stderr
    )
    with webhook() as hook:
        environment = {"STABLEPIPE_NOTIFY_URL": hook.url}
        again = stablepipe("run", *ONE_CLASS, cwd=tmp_path, env=environment)
        done = stablepipe("run", *QUICK, cwd=tmp_path, env=environment)
    assert again.code == 2 and done.code == 0, done.stderr
    assert [m["stage"] for m in hook.received] == ["validate"]  # the failure's, not the success's
    assert "alert" not in done.stderr
