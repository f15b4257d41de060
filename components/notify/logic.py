"""The notify stage: the exit step of a run on the cluster (`dsl.ExitHandler`), which runs
however the run ended and reads its final state (`PipelineTaskFinalStatus`).

- A run that did not succeed posts the failure alert (components/core/notify.py) to the URL in
  STABLEPIPE_NOTIFY_URL (the Secret `stablepipe-notify`, key `url`; none: no alert).
- With STABLEPIPE_PUSHGATEWAY set (the ConfigMap `stablepipe-config`), it pushes what the final
  state tells (components/core/prometheus.py `final_status_metrics`).

Neither ever fails the step: a webhook or gateway that is down is logged. Locally the runner
does both itself, with the stages' numbers (pipelines/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from components.common.settings import RunConfig
from components.core.notify import NOTIFY_ENV, failure_message, post_message, shown_url
from components.core.prometheus import final_status_metrics, push_metrics
from components.core.registry import entry_name

__all__ = ["notify_run"]

PUSHGATEWAY_ENV = "STABLEPIPE_PUSHGATEWAY"
# How the final status says the run succeeded: kfp.local says SUCCEEDED, the KFP backend's
# driver COMPLETE (CACHED when every step came from the cache).
SUCCESS_STATES = frozenset({"SUCCEEDED", "COMPLETE", "CACHED"})


def notify_run(
    state: str,
    job: str,
    error_message: str | None,
    run: tuple[str, str],
    settings: RunConfig,
    env: Mapping[str, str] = os.environ,
) -> dict[str, Any]:
    """Alert on a run (`run`: the pipeline's name and the run id) that did not succeed, and push
    its final state; the facts of what was done (where to, else the reason it was not;
    `skipped` when no URL is set)."""
    pipeline, run_id = run
    entry = entry_name(settings.model_name, settings.target)
    facts: dict[str, Any] = {"state": state, "alert": "skipped", "metrics": "skipped"}
    url = env.get(NOTIFY_ENV, "").strip()
    if state not in SUCCESS_STATES and url:
        message = failure_message(
            run_id=run_id or job,  # a UI or scheduled run: the KFP run's name
            pipeline=pipeline,
            model=entry,
            stage="",  # the final state does not name the step that failed
            exit_code=1,
            reason=((error_message or "").strip() or f"the run ended {state}").splitlines()[0],
            logs=f"Kubeflow Pipelines run {job}",
        )
        problem = post_message(url, message)
        facts["alert"] = problem or f"posted to {shown_url(url)}"
    gateway = env.get(PUSHGATEWAY_ENV, "").strip()
    if gateway:
        registry = final_status_metrics(state in SUCCESS_STATES, {}).registry
        problem = push_metrics(gateway, registry, {"model": entry})
        facts["metrics"] = problem or f"pushed to {gateway}"
    return facts
