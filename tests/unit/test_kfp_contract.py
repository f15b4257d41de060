"""`stablepipe submit` and `stablepipe schedule` against the KFP v2beta1 REST API: a contract
test. No Kubeflow API server can run here, so tests/support/kfp_api.py answers the calls
kfp.Client makes and checks every request body against the models of kfp-server-api; the
object store the runs are planned against is a real S3 server (SeaweedFS)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import main
from tests.conftest import make_bucket
from tests.support.kfp_api import KfpApi, kfp_api

UPLOADS = r"/apis/v2beta1/pipelines/upload(_version)?"


@pytest.fixture()
def api(s3_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[KfpApi]:
    """The stand-in API and the ConfigMap's environment, pointed at the test's S3 server."""
    make_bucket(s3_env, "mlpipeline")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client keeps its context file there
    for name, value in {
        "STABLEPIPE_S3_ENDPOINT": s3_env.endpoint,
        "STABLEPIPE_S3_BUCKET": "mlpipeline",
        "STABLEPIPE_S3_PREFIX": "stablepipe",
    }.items():
        monkeypatch.setenv(name, value)
    with kfp_api() as server:
        monkeypatch.setenv("STABLEPIPE_KFP_HOST", server.url)
        yield server
    assert server.broken == [], "requests outside the v2beta1 contract"


def test_submit_uploads_a_version_only_when_the_pipeline_changed(
    api: KfpApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", "--data", "demo:wine", "--trials", "4", "--wait", "60"]) == 0
    first = capsys.readouterr().err
    assert main(["submit", "--data", "demo:wine", "--trials", "4"]) == 0
    second = capsys.readouterr().err
    # one pipeline, one version named by the compiled YAML's hash, uploaded once
    (pipeline,) = api.pipelines.values()
    assert pipeline["display_name"] == "stablepipe-training"
    named = [v for v in api.versions.values() if v["display_name"] != "stablepipe-training"]
    (version,) = named
    assert version["display_name"].startswith("stablepipe-training-")
    assert api.count("POST", UPLOADS) == 2  # the pipeline (with its first version), the digest's
    assert f"version {version['display_name']} (uploaded)" in first
    assert f"version {version['display_name']} (unchanged)" in second
    assert "finished: SUCCEEDED" in first
    assert "train" in api.cached_tasks(version["pipeline_version_id"])  # cached by default
    # both runs use that version, with every pipeline parameter and a run id each
    runs = list(api.runs.values())
    assert len(runs) == 2 and len({r["runtime_config"]["parameters"]["run_id"] for r in runs}) == 2
    for run in runs:
        reference = run["pipeline_version_reference"]
        assert reference["pipeline_version_id"] == version["pipeline_version_id"]
        assert run["runtime_config"]["parameters"]["data"] == "demo:wine"
        assert run["runtime_config"]["parameters"]["trials"] == 4
        assert run["experiment_id"] in api.experiments


def test_schedule_is_declarative_and_idempotent(
    api: KfpApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "retrain.yaml"
    config.write_text(yaml.safe_dump({"data": "demo:wine", "trials": 8}))
    nightly = ["schedule", "nightly", "--cron", "0 3 * * *", "--config", str(config)]
    assert main(nightly) == 0
    assert "schedule nightly: created (0 0 3 * * *" in capsys.readouterr().err
    (made,) = api.recurring_runs.values()
    assert made["display_name"] == "nightly"
    # every scheduled run gets the same parameters: KFP's cache is off in every task of its
    # version (kfp.Client drops enable_caching for a version), nested ones included
    version_id = made["pipeline_version_reference"]["pipeline_version_id"]
    assert api.cached_tasks(version_id) == []
    assert made["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert int(made["max_concurrency"]) == 1 and made["no_catchup"] is True
    parameters = made["runtime_config"]["parameters"]
    assert parameters["trials"] == 8 and parameters["run_id"] == ""  # each run: its KFP name
    # the same again: nothing changes, nothing is uploaded
    uploads = api.count("POST", UPLOADS)
    assert main(nightly) == 0
    assert "schedule nightly: unchanged" in capsys.readouterr().err
    assert list(api.recurring_runs.values()) == [made]
    assert api.count("POST", UPLOADS) == uploads
    # a changed one replaces it under its name; --delete removes it, twice is fine
    assert main([*nightly[:3], "30 2 * * 1-5", *nightly[4:]]) == 0
    assert "schedule nightly: updated" in capsys.readouterr().err
    (changed,) = api.recurring_runs.values()
    assert changed["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * 1-5"
    assert main(["schedule", "nightly", "--delete"]) == 0
    assert main(["schedule", "nightly", "--delete"]) == 0
    assert "absent: nothing to delete" in capsys.readouterr().err
    assert api.recurring_runs == {}


def test_schedule_refuses_what_it_cannot_apply(
    api: KfpApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "nightly", "--data", "demo:wine"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: schedule nightly: give --cron '0 3 * * *', or --delete"
    )
    assert main(["schedule", "nightly", "--cron", "every night"]) == 2
    assert "--cron must be a cron expression of five fields" in capsys.readouterr().err
    assert api.calls == []  # refused before any call


def test_submit_when_the_data_is_new_or_drifted(
    api: KfpApi, capsys: pytest.CaptureFixture[str], s3_env: Any, tmp_path: Path
) -> None:
    """The retraining CronJob's check (`submit --when new|drift`): against the champion that a
    real run promoted into the store, with data on the real S3 server."""
    import os
    import subprocess
    import sys

    from components.core.source.files import load_demo
    from tests.conftest import s3_client

    wine = load_demo("wine")
    assert main(["submit", "--data", "demo:wine", "--when", "new"]) == 0
    assert "retrain check: no champion yet: submitting" in capsys.readouterr().err
    assert len(api.runs) == 1
    store = "s3://mlpipeline/stablepipe"
    promoted = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--data", "demo:wine", "--trials", "2",
         "--workers", "1", "--cv-folds", "2", "--store", store,
         "--s3-endpoint", os.environ["STABLEPIPE_S3_ENDPOINT"]],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600,
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    # the champion's data: nothing to retrain on, nothing submitted
    assert main(["submit", "--data", "demo:wine", "--when", "new"]) == 0
    assert "the data is the champion's" in capsys.readouterr().err
    assert len(api.runs) == 1
    # the same rows again as a file: new data, not drifted
    client = s3_client(s3_env)
    for key, frame in {
        "data/wine.csv": wine,
        "data/wine-shifted.csv": wine.assign(alcohol=wine["alcohol"] + 3.0),
    }.items():
        body = frame.to_csv(index=False).encode()
        client.put_object("mlpipeline", key, io.BytesIO(body), len(body))
    target = ["--target", "target"]
    assert (
        main(["submit", "--data", "s3://mlpipeline/data/wine.csv", *target, "--when", "drift"]) == 0
    )
    line = capsys.readouterr().err
    assert "the data changed since the champion" in line and "drift no_drift" in line, line
    assert line.strip().endswith("not submitting") and len(api.runs) == 1
    assert main(["submit", "--data", "s3://mlpipeline/data/wine-shifted.csv", *target,
                 "--when", "drift"]) == 0  # fmt: skip
    line = capsys.readouterr().err
    assert "drift drift (alcohol" in line and "quality" in line, line
    assert len(api.runs) == 2


def test_a_multi_user_namespace_keeps_its_pipeline(
    api: KfpApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a multi-user KFP the pipeline is the namespace's: the second submit finds it there
    instead of uploading it again (which the API refuses as a duplicate)."""
    for _ in range(2):
        assert main(["submit", "--data", "demo:wine", "--namespace", "ml-prod"]) == 0
    assert [p["namespace"] for p in api.pipelines.values()] == ["ml-prod"]
    assert "(unchanged)" in capsys.readouterr().err.splitlines()[-2]
    # cache: false is a version with KFP's cache off, not a flag the version would ignore
    assert main(["submit", "--data", "demo:wine", "--namespace", "ml-prod", "--no-cache"]) == 0
    run = list(api.runs.values())[-1]
    assert api.cached_tasks(run["pipeline_version_reference"]["pipeline_version_id"]) == []
