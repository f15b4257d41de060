"""Ten `stablepipe run` commands at once against one registry, on a local folder and on S3
(SeaweedFS, with --store): every run ends 0; a run whose evaluation compared with a champion
that another run replaced first says `superseded` and leaves nothing in the registry; every
version is complete, the champion names one of them, and the history is one chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_bucket
from tests.unit.test_registry_race import assert_whole

ROOT = Path(__file__).resolve().parents[2]
RUNS = 10
BUCKET = "concurrent-runs"


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[list[str], str, str]:
    """(the registry flags, the registry entry's URI, the endpoint)."""
    if request.param == "local":
        registry = str(tmp_path / "models")
        return ["--registry", registry], f"{registry}/target", ""
    server = request.getfixturevalue("s3_env")
    make_bucket(server, BUCKET)
    store = f"s3://{BUCKET}/team"
    flags = ["--store", store, "--s3-endpoint", server.endpoint]
    return flags, f"{store}/models/target", server.endpoint


@pytest.mark.timeout(900)
def test_ten_runs_at_once_keep_the_registry_whole(
    target: tuple[list[str], str, str], tmp_path: Path
) -> None:
    flags, registry, endpoint = target
    quick = ["--trials", "2", "--workers", "1", "--cv-folds", "2"]
    runs = []
    for index in range(RUNS):
        args = ["run", "--data", "demo:wine", *quick, "--seed", str(index), *flags]
        args += ["--runs-dir", str(tmp_path / f"runs{index}")]
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", *args],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    errors = [run.communicate(timeout=800)[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * RUNS, errors

    summaries = [
        json.loads(next((tmp_path / f"runs{i}").glob("*/summary.json")).read_text())
        for i in range(RUNS)
    ]
    chain = assert_whole(registry, endpoint)
    promoted = {s["run_id"] for s in summaries if s["promoted"]}
    assert set(chain) == promoted  # the registry holds exactly the runs that say promoted
    for summary, stderr in zip(summaries, errors, strict=True):
        decision = summary["promotion"]["decision"]
        if summary["promoted"]:
            assert decision == "promote"
            assert "champion   PROMOTED" in stderr
        elif decision == "superseded":
            assert "another run made version" in summary["promotion"]["reason"]
            assert "champion   superseded: another run made version" in stderr
        else:
            assert decision == "keep"
