"""Failure alerts (components/core/notify.py) posted to a local HTTP server: the body a chat
webhook shows, bounded retries, and a refusal that is final."""

from __future__ import annotations

import pytest

from components.common import webhooks
from components.core.notify import failure_message, post_message, shown_url
from tests.support.webhook import webhook

MESSAGE = failure_message(
    run_id="20261206-120000-abcdef",
    pipeline="stablepipe-training",
    model="churn",
    stage="validate",
    exit_code=2,
    reason="target 'churn' has a single class 'no' in all 200 rows",
    logs="runs/20261206-120000-abcdef/logs/pipeline.log",
)


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks.time, "sleep", lambda seconds: None)


def test_a_webhook_gets_one_json_message_with_text_for_a_chat() -> None:
    with webhook() as hook:
        assert post_message(hook.url, MESSAGE) == ""
    (got,) = hook.received
    assert got["content_type"] == "application/json"
    assert got["text"] == (
        "stablepipe stablepipe-training run 20261206-120000-abcdef (churn) bad input in validate: "
        "target 'churn' has a single class 'no' in all 200 rows "
        "(logs: runs/20261206-120000-abcdef/logs/pipeline.log)"
    )
    assert {k: got[k] for k in ("run_id", "stage", "exit_code", "logs")} == {
        "run_id": "20261206-120000-abcdef",
        "stage": "validate",
        "exit_code": 2,
        "logs": "runs/20261206-120000-abcdef/logs/pipeline.log",
    }


def test_a_webhook_that_fails_is_tried_three_times_and_one_that_refuses_once() -> None:
    with webhook(status=503) as hook:
        assert post_message(hook.url, MESSAGE) == "HTTP 503 Service Unavailable"
    assert hook.attempts == webhooks.TRIES
    with webhook(status=404) as hook:
        assert post_message(hook.url, MESSAGE) == "HTTP 404 Not Found"
    assert hook.attempts == 1


def test_the_url_shown_in_a_warning_hides_the_webhook_key() -> None:
    url = "https://hooks.slack.com/services/T000/B000/secret-key"
    assert shown_url(url) == "https://hooks.slack.com/..."
    assert "secret" not in shown_url("https://user:secret@example.com/x")


def test_the_exit_step_alerts_only_on_a_run_that_did_not_succeed() -> None:
    from components.common.settings import RunConfig
    from components.notify.logic import notify_run
    from tests.support.seaweedfs import free_ports

    settings = RunConfig(target="churn", model_name="")
    (port,) = free_ports(1)
    with webhook() as hook:
        env = {
            "STABLEPIPE_NOTIFY_URL": hook.url,
            "STABLEPIPE_PUSHGATEWAY": f"http://127.0.0.1:{port}",
        }
        run = ("stablepipe-training", "20261206-1")
        done = notify_run("SUCCEEDED", "job-1", "", run, settings, env)
        failed = notify_run(
            "FAILED", "job-2", "Task exit-handler-1 failed.\nmore", run, settings, env
        )
        quiet = notify_run("FAILED", "job-3", "", run, settings, {})
        # KFP gives no message for some failures (error_message None): still one alert
        canceled = notify_run(
            "CANCELED", "job-4", None, run, settings, {"STABLEPIPE_NOTIFY_URL": hook.url}
        )
    assert done["alert"] == "skipped" and failed["alert"].startswith("posted to http://127.0.0.1:")
    assert quiet == {"state": "FAILED", "alert": "skipped", "metrics": "skipped"}
    message, last = hook.received
    assert last["reason"] == "the run ended CANCELED" and canceled["alert"].startswith("posted")
    assert message["reason"] == "Task exit-handler-1 failed." and message["model"] == "churn"
    assert message["logs"] == "Kubeflow Pipelines run job-2" and message["stage"] == ""
    # a gateway that is down is a reason in the step's facts, never a failed step
    assert "refused" in failed["metrics"].lower() and "refused" in done["metrics"].lower()


def test_the_backends_success_states_post_nothing() -> None:
    """The KFP backend says COMPLETE (CACHED when every step came from the cache) where
    kfp.local says SUCCEEDED: none of them is a failure."""
    from components.common.settings import RunConfig
    from components.notify.logic import notify_run

    with webhook() as hook:
        env = {"STABLEPIPE_NOTIFY_URL": hook.url}
        for state in ("SUCCEEDED", "COMPLETE", "CACHED"):
            facts = notify_run(state, "job", None, ("p", ""), RunConfig(target="y"), env)
            assert facts["alert"] == "skipped", state
    assert hook.received == []


def test_a_webhook_that_is_not_http_or_not_a_url_is_a_reason_never_an_error() -> None:
    """Whatever the URL (from a Secret, never checked) and whatever answers, a reason comes
    back, and it never quotes the URL's key."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def not_http() -> None:  # a TLS port, say: bytes that are no HTTP answer
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"\x15\x03\x01\x00\x02\x02\x46")
        connection.close()

    threading.Thread(target=not_http, daemon=True).start()
    port = server.getsockname()[1]
    for url in (f"http://127.0.0.1:{port}/secret-key", "hooks.example/secret-key",
                "http://127.0.0.1:1/a path/secret-key"):  # fmt: skip
        reason = post_message(url, MESSAGE)
        assert reason and "secret-key" not in reason, (url, reason)
    server.close()
