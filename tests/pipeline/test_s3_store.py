"""Runs against a real S3 server (SeaweedFS): an s3:// source, --store publishing, the registry
on S3, predict from the S3 champion, and the failure cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from minio import Minio

from tests.conftest import make_bucket, s3_client
from tests.pipeline.conftest import stablepipe, wait_for_event
from tests.support import seaweedfs

BUCKET = "ml-artifacts"


@pytest.fixture()
def client(s3_env) -> Minio:
    make_bucket(s3_env, BUCKET)
    make_bucket(s3_env, "raw-data")
    return s3_client(s3_env)


def objects(client: Minio, prefix: str) -> list[str]:
    return sorted(o.object_name for o in client.list_objects(BUCKET, prefix=prefix, recursive=True))


def run_titanic(csv: Path, runs_dir: Path, *args: str):
    """`stablepipe run` on the Titanic CSV with `survived` as target."""
    return stablepipe(
        "run", "--data", str(csv), "--target", "survived", "--runs-dir", str(runs_dir), *args
    )


def s3_args(server, store: str, *extra: str) -> list[str]:
    return [
        "--store",
        store,
        "--s3-endpoint",
        server.endpoint,
        "--trials",
        "3",
        "--workers",
        "1",
        "--cv-folds",
        "2",
        *extra,
    ]


def test_s3_source_store_registry_and_predict(
    client: Minio, s3_env, workdir: Path, titanic: pd.DataFrame
) -> None:
    # a prefix of two CSV objects is read as one table
    half = len(titanic) // 2
    for name, part in (("a.csv", titanic.iloc[:half]), ("b.csv", titanic.iloc[half:])):
        part.to_csv(workdir / name, index=False)
        client.fput_object("raw-data", f"titanic/2026-11/{name}", str(workdir / name))
    store = f"s3://{BUCKET}/churn"
    result = stablepipe(
        "run",
        "--data",
        "s3://raw-data/titanic/2026-11",
        "--target",
        "survived",
        "--runs-dir",
        str(workdir / "runs"),
        *s3_args(s3_env, store),
    )
    assert result.code == 0, result.stderr
    (summary_path,) = (workdir / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    run_id = summary["run_id"]
    assert summary["data"]["rows"] == len(titanic) and summary["promoted"] is True
    assert summary["registry"] == f"{store}/models/survived"
    published = objects(client, f"churn/runs/{run_id}/")
    for name in (
        "summary.json",
        "report.html",
        "schema.json",
        "model/model.skops",
        "model/model.json",
        "logs/stages.jsonl",
    ):
        assert f"churn/runs/{run_id}/{name}" in published, published
    remote = json.loads(client.get_object(BUCKET, f"churn/runs/{run_id}/summary.json").read())
    assert remote["status"] == "succeeded" and remote["published"]["report"].startswith("s3://")
    registry = objects(client, "churn/models/survived/")
    assert "churn/models/survived/champion.json" in registry
    assert f"churn/models/survived/versions/{run_id}/model/model.skops" in registry
    assert f"churn/models/survived/versions/{run_id}/MODEL_CARD.md" in registry
    # no credential in anything the run wrote
    for path in (workdir / "runs").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".html"):
            assert seaweedfs.SECRET_KEY not in path.read_text(errors="ignore"), path

    titanic.drop(columns=["survived"]).to_csv(workdir / "new.csv", index=False)
    predicted = stablepipe(
        "predict",
        "--model",
        f"{store}/models/survived/champion",
        "--data",
        str(workdir / "new.csv"),
        "--output",
        str(workdir / "p.csv"),
        "--s3-endpoint",
        s3_env.endpoint,
    )
    assert predicted.code == 0, predicted.stderr
    assert len(pd.read_csv(workdir / "p.csv")) == len(titanic)


def test_wrong_credentials_and_missing_bucket_are_bad_input(
    client: Minio, s3_env, workdir: Path, titanic_csv: Path, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-123")
    wrong = run_titanic(titanic_csv, workdir / "runs", *s3_args(s3_env, f"s3://{BUCKET}/x"))
    assert wrong.code == 2 and "the secret key does not match" in wrong.stderr
    assert "wrong-secret-123" not in wrong.stderr + wrong.stdout
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.SECRET_KEY)
    missing = run_titanic(
        titanic_csv, workdir / "runs", *s3_args(s3_env, "s3://no-such-bucket-7/x")
    )
    assert missing.code == 2 and "the bucket does not exist" in missing.stderr
    assert not list((workdir / "runs").glob("*/summary.json"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "s3://Bad_Bucket/x"], "not a valid S3 bucket name"),
        (["--store", "/tmp/local"], "--store must be s3://bucket/prefix"),
        (["--store", "s3://ok-bucket/a/../b"], "without '..'"),
        (
            ["--data", "s3://raw-data/nothing-here/", "--target", "y"],
            "holds no CSV, TSV or Parquet",
        ),
        (
            ["--store", "s3://ok-bucket/x", "--s3-endpoint", "ftp://host/path"],
            "--s3-endpoint must be",
        ),
    ],
)
def test_bad_s3_arguments(
    client: Minio, s3_env, workdir: Path, args: list[str], message: str
) -> None:
    result = stablepipe(
        "run", "--s3-endpoint", s3_env.endpoint, *args, "--runs-dir", str(workdir / "runs")
    )
    assert result.code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_concurrent_runs_publish_side_by_side(
    client: Minio, s3_env, workdir: Path, titanic_csv: Path
) -> None:
    store = f"s3://{BUCKET}/concurrent"
    results = {}

    def run(name: str) -> None:
        results[name] = run_titanic(
            titanic_csv, workdir / name, *s3_args(s3_env, store, "--seed", str(len(name)))
        )

    threads = [threading.Thread(target=run, args=(name,)) for name in ("one", "three")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.code == 0 for r in results.values()), {k: r.stderr for k, r in results.items()}
    run_ids = [
        json.loads(next((workdir / n).glob("*/summary.json")).read_text())["run_id"]
        for n in ("one", "three")
    ]
    for run_id in run_ids:
        assert f"concurrent/runs/{run_id}/summary.json" in objects(client, "concurrent/runs/")
    pointer = json.loads(
        client.get_object(BUCKET, "concurrent/models/survived/champion.json").read()
    )
    assert pointer["version"] in run_ids
    versions = {k.split("/")[4] for k in objects(client, "concurrent/models/survived/versions/")}
    assert pointer["version"] in versions


def test_server_stopped_during_a_run_leaves_the_registry_unchanged(
    tmp_path: Path, workdir: Path, titanic_csv: Path, monkeypatch
) -> None:
    """A server of its own, stopped while the search runs: the run fails (after the bounded
    retries) with exit code 1 and no summary claiming success; the champion is untouched."""
    server = seaweedfs.start(tmp_path / "own-s3")
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.SECRET_KEY)
        make_bucket(server, BUCKET)
        own = s3_client(server)
        store = f"s3://{BUCKET}/stop"
        first = run_titanic(titanic_csv, workdir / "runs", *s3_args(server, store))
        assert first.code == 0, first.stderr
        pointer_before = own.get_object(BUCKET, "stop/models/survived/champion.json").read()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.cli",
                "run",
                "--data",
                str(titanic_csv),
                "--target",
                "survived",
                "--runs-dir",
                str(workdir / "runs2"),
                "--no-cache",
                *s3_args(server, store, "--trials", "30", "--min-improvement", "0"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        wait_for_event(workdir / "runs2", "tune", "started")
        server.stop()
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 1, stderr
        assert "failed:" in stderr and "Traceback" not in stderr
        (run_dir,) = (workdir / "runs2").glob("2*")
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "failed"
        server = seaweedfs.start(server.data_dir)
        own = s3_client(server)
        assert own.get_object(BUCKET, "stop/models/survived/champion.json").read() == pointer_before
    finally:
        server.stop()
