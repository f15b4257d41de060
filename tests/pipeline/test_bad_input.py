"""Bad input: exit code 2, one line on stderr naming the problem and the value, no traceback,
no run folder pretending to be complete, and the champion untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.pipeline.conftest import QUICK, stablepipe


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> Path:
    """A registry with a champion for `survived`, made by one real run."""
    home = tmp_path_factory.mktemp("home")
    titanic.to_csv(home / "titanic.csv", index=False)
    done = stablepipe(
        "run",
        "--data",
        str(home / "titanic.csv"),
        "--target",
        "survived",
        "--trials",
        "3",
        "--workers",
        "1",
        "--cv-folds",
        "2",
        cwd=home,
    )
    assert done.code == 0, done.stderr
    return home


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


CASES = {
    "empty file": (
        lambda d: ["--data", str(write(d / "e.csv", b"")), "--target", "survived"],
        "empty (0 bytes)",
    ),
    "header only": (
        lambda d: ["--data", str(write(d / "h.csv", "pclass,survived\n")), "--target", "survived"],
        "header but no rows",
    ),
    "misspelt target": (
        lambda d: ["--data", str(d / "titanic.csv"), "--target", "survived_"],
        "did you mean 'survived'",
    ),
    "target all missing": (
        lambda d: [
            "--data",
            str(write(d / "m.csv", "a,survived\n" + "1,\n" * 30)),
            "--target",
            "survived",
        ],
        "all 30 rows are missing",
    ),
    "single class": (
        lambda d: [
            "--data",
            str(write(d / "s.csv", "a,survived\n" + "1,yes\n2,yes\n" * 20)),
            "--target",
            "survived",
        ],
        "single class 'yes'",
    ),
    "unknown task": (
        lambda d: ["--data", str(d / "titanic.csv"), "--target", "survived", "--task", "ranking"],
        "got 'ranking'",
    ),
    "negative trials": (
        lambda d: ["--data", str(d / "titanic.csv"), "--target", "survived", "--trials", "-3"],
        "--trials must be 0 (no cap) or a positive integer; got -3",
    ),
    "non-integer trials": (lambda d: ["--trials", "ten"], "--trials must be an integer; got 'ten'"),
    "missing file": (
        lambda d: ["--data", str(d / "nope.csv"), "--target", "survived"],
        "does not exist",
    ),
    "not a table": (
        lambda d: ["--data", str(write(d / "notes.txt", "hello")), "--target", "x"],
        "must be a CSV, TSV, Parquet, JSON, JSON Lines or Excel file",
    ),
    "corrupt parquet": (
        lambda d: ["--data", str(write(d / "c.parquet", b"PAR1 broken")), "--target", "survived"],
        "not a readable parquet",
    ),
    "unknown flag": (
        lambda d: ["--trails", "5"],
        "unknown flag '--trails'; did you mean '--trials'?",
    ),
    "bad config key": (
        lambda d: ["--config", str(write(d / "c.yaml", "trails: 5\n"))],
        "did you mean 'trials'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case: str, champion_home: Path) -> None:
    make_args, expected = CASES[case]
    registry = champion_home / "models" / "survived"
    pointer = (registry / "champion.json").read_bytes()
    versions = sorted(p.name for p in (registry / "versions").iterdir())
    runs_before = set((champion_home / "runs").iterdir())
    result = stablepipe("run", *make_args(champion_home), cwd=champion_home)
    assert result.code == 2, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert (registry / "champion.json").read_bytes() == pointer
    assert sorted(p.name for p in (registry / "versions").iterdir()) == versions
    for run_dir in set((champion_home / "runs").iterdir()) - runs_before:
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["error"]["kind"] == "bad_input"
        assert not (run_dir / "model").exists()


def test_data_errors_found_inside_a_task_leave_a_failed_summary(champion_home: Path) -> None:
    write(champion_home / "one.csv", "a,survived\n" + "1,yes\n2,yes\n" * 20)
    before = set((champion_home / "runs").iterdir())
    result = stablepipe(
        "run",
        "--data",
        str(champion_home / "one.csv"),
        "--target",
        "survived",
        "--model-name",
        "other",
        cwd=champion_home,
    )
    assert result.code == 2
    (new,) = set((champion_home / "runs").iterdir()) - before
    summary = json.loads((new / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"]["stage"] == "validate"
    stages = {s["name"]: s["status"] for s in summary["stages"]}
    assert stages["ingest"] in ("succeeded", "cached") and stages["validate"] == "failed"
    assert not (champion_home / "models" / "other").exists()


def test_predict_errors(champion_home: Path, titanic: pd.DataFrame) -> None:
    model = champion_home / "models" / "survived" / "champion"
    titanic.drop(columns=["age"]).to_csv(champion_home / "no_age.csv", index=False)
    missing = stablepipe(
        "predict",
        "--model",
        str(model),
        "--data",
        str(champion_home / "no_age.csv"),
        "--output",
        str(champion_home / "p.csv"),
    )
    assert (
        missing.code == 2 and "lacks 1 column(s) the model was trained on: 'age'" in missing.stderr
    )
    assert not (champion_home / "p.csv").exists()
    not_model = stablepipe(
        "predict",
        "--model",
        str(champion_home),
        "--data",
        str(champion_home / "titanic.csv"),
        "--output",
        str(champion_home / "p.csv"),
    )
    assert not_model.code == 2 and "must be a model folder" in not_model.stderr
    shutil.rmtree(champion_home / "runs" / ".kfp", ignore_errors=True)


def test_predict_and_compile_argument_errors(champion_home: Path, titanic: pd.DataFrame) -> None:
    model = str(champion_home / "models" / "survived" / "champion")
    titanic.assign(age="old").to_csv(champion_home / "text_age.csv", index=False)
    wrong_type = stablepipe(
        "predict",
        "--model",
        model,
        "--data",
        str(champion_home / "text_age.csv"),
        "--output",
        str(champion_home / "p.csv"),
    )
    assert wrong_type.code == 2 and "cannot be scored by the model" in wrong_type.stderr
    into_folder = stablepipe(
        "predict",
        "--model",
        model,
        "--data",
        str(champion_home / "titanic.csv"),
        "--output",
        str(champion_home),
    )
    assert into_folder.code == 2 and "--output must be a file" in into_folder.stderr
    not_yaml = stablepipe("compile", "--output", str(champion_home / "pipeline.json"))
    assert not_yaml.code == 2 and "--output must end in .yaml, .yml" in not_yaml.stderr
    for result in (wrong_type, into_folder, not_yaml):
        assert "Traceback" not in result.stderr


def test_seed_out_of_range_and_infinite_values(champion_home: Path, titanic: pd.DataFrame) -> None:
    seed = stablepipe(
        "run",
        "--data",
        str(champion_home / "titanic.csv"),
        "--target",
        "survived",
        "--seed",
        "-1",
        cwd=champion_home,
    )
    assert seed.code == 2 and "--seed must be between 0 and" in seed.stderr
    with_inf = titanic.copy()
    with_inf.loc[:20, "age"] = float("inf")
    with_inf.to_csv(champion_home / "inf.csv", index=False)
    run = stablepipe(
        "run",
        "--data",
        str(champion_home / "inf.csv"),
        "--target",
        "survived",
        *QUICK,
        "--model-name",
        "inf-model",
        cwd=champion_home,
    )
    assert run.code == 0, run.stderr
