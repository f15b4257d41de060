from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from components.common.errors import BadInputError
from components.common.settings import RunConfig, build_config, load_config_file
from pipelines.local import ProgressTee


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data: data.csv\ntarget: churn\ntrials: 12\ntime-budget: 30\n")
    config = build_config(load_config_file(str(path)), {"trials": 5, "seed": None})
    assert (config.data, config.target, config.trials, config.time_budget) == (
        "data.csv",
        "churn",
        5,
        30.0,
    )
    assert config.seed == RunConfig().seed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trails: 5\n", "unknown key 'trails'; did you mean 'trials'"),
        ("trials: many\n", "'trials' must be an integer; got 'many'"),
        ("- a\n- b\n", "must hold a mapping"),
        ("cache: maybe\n", "'cache' must be true or false"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_config_file(str(path))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"trials": -1}, r"--trials must be 0 \(no cap\) or a positive integer; got -1"),
        (
            {"task": "ranking"},
            "--task must be one of auto, binary, multiclass, regression; got 'ranking'",
        ),
        ({"workers": 0}, "--workers must be between 1 and 16; got 0"),
        ({"time_budget": -1.0}, r"--time-budget must be between 1 and 604800 seconds"),
        # not finite, or too small for any trial to start, or past any sane search
        ({"time_budget": float("inf")}, "--time-budget must be a finite number; got inf"),
        ({"time_budget": 1e-9}, r"--time-budget must be between 1 .*; got 1e-09"),
        ({"time_budget": 1e7}, r"--time-budget must be between 1 .*; got 10000000.0"),
        ({"min_improvement": float("inf")}, "--min-improvement must be a finite number"),
        ({"min_improvement": float("nan")}, "--min-improvement must be a finite number"),
        ({"stream_above_mb": float("inf")}, "--stream-above-mb must be a finite number"),
        # costs that grow with the value are bounded before anything is allocated
        ({"text_max_terms": 10**9}, r"--text-max-terms must be between 2 and 1048576"),
        ({"text_components": 10**6}, "--text-components must be between 1 and 1000"),
        ({"svd_components": 5000}, "--svd-components must be between 1 and 1000"),
        ({"data": "x.csv"}, "--target is required with --data 'x.csv'"),
        ({"decimal": ";"}, "--decimal must be . or ,; got ';'"),
        # refused before a run (or a cluster submission) starts, not in its ingest stage
        ({"decimal": ",", "delimiter": ","}, "--decimal , needs another --delimiter"),
    ],
)
def test_bad_flags(flags: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        build_config({}, flags)


def test_registry_entry_defaults_to_the_target_name() -> None:
    from pipelines.plan import registry_location

    assert registry_location(RunConfig(target="churn flag")) == str(
        Path("models/churn-flag").resolve()
    )
    assert registry_location(RunConfig(model_name="m", store="s3://ml/churn/")) == (
        "s3://ml/churn/models/m"
    )


def test_a_local_run_gives_print_back_as_it_found_it(tmp_path: Path) -> None:
    """kfp.local indents task output by swapping builtins.print in and out; two tasks in its
    threads can interleave the swaps (here replayed in that order, with kfp's own context
    manager) and leave every later print of the process indented. A run restores it."""
    import builtins
    from types import SimpleNamespace

    from kfp.local import logging_utils

    from pipelines.local import LocalExecutor
    from pipelines.plan import Plan
    from pipelines.record import RunRecord

    original = builtins.print

    def pipeline(**_: Any) -> Any:
        first, second = logging_utils.indented_print(), logging_utils.indented_print()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        second.__exit__(None, None, None)
        assert builtins.print is not original  # the leak, reproduced
        return SimpleNamespace(outputs={})

    config = RunConfig(runs_dir=str(tmp_path / "runs"))
    plan = Plan(config, "run-1", "", [], "", "", "", str(tmp_path / "models"))
    LocalExecutor(terminal=io.StringIO()).run(pipeline, {}, RunRecord(plan))
    assert builtins.print is original


def test_a_retried_worker_is_one_worker() -> None:
    """kfp.local logs a retry as another start of the same task: the count stays the workers."""
    log, terminal = io.StringIO(), io.StringIO()
    tee = ProgressTee(log=log, terminal=terminal)
    for line in [
        "12:00:02.000 - INFO - Executing task 'tune'",
        "12:00:02.000 - INFO - Executing task 'tune'",
        "12:00:03.000 - ERROR - Task 'tune' finished with status FAILURE",
        "2026-12-02 12:00:03,000 - INFO - Task tune failed (attempt 1/3). Retrying in 5.0s...",
        "12:00:08.000 - INFO - Executing task 'tune'",
        "12:00:09.000 - INFO - Task 'tune' finished with status SUCCESS",
        "12:00:10.000 - INFO - Task 'tune' finished with status SUCCESS",
    ]:
        tee.write(line + "\n")
    tune = next(s for s in tee.stage_list() if s["name"] == "tune")
    assert tune["status"] == "succeeded" and tune["tasks"] == 2, tune
    assert "(2 workers)" in terminal.getvalue().splitlines()[-1]


def test_progress_reads_kfp_local_lines_including_parallel_and_cached_tasks() -> None:
    log, terminal = io.StringIO(), io.StringIO()
    tee = ProgressTee(log=log, terminal=terminal)
    for line in [
        "12:00:00.000 - INFO - Executing task \x1b[96m'ingest'\x1b[0m",
        "    some task output",
        "12:00:01.000 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status "
        "\x1b[92mSUCCESS\x1b[0m",
        "12:00:01.000 - INFO - Task create-study cache hit (key=abc); skipping execution.",
        "12:00:02.000 - INFO - Executing task 'tune'",
        "12:00:02.000 - INFO - Executing task 'tune'",
        "12:00:03.000 - INFO - Task 'tune' finished with status SUCCESS",
        "12:00:04.000 - INFO - Task 'tune' finished with status SUCCESS",
        "12:00:05.000 - INFO - Executing task 'train'",
        "12:00:06.000 - ERROR - Task 'train' finished with status FAILURE",
    ]:
        tee.write(line + "\n")
    stages = {s["name"]: s for s in tee.stage_list()}
    assert stages["ingest"]["status"] == "succeeded"
    assert stages["create_study"]["status"] == "cached"
    assert stages["tune"]["status"] == "succeeded" and stages["tune"]["tasks"] == 2
    assert stages["train"]["status"] == "failed"
    assert stages["promote"]["status"] == "skipped"
    shown = terminal.getvalue().splitlines()
    assert len(shown) == 4 and "(2 workers)" in shown[2] and "cached" in shown[1]
    assert "some task output" in log.getvalue() and "some task output" not in terminal.getvalue()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("s3://bucket", "--schema must name a file"),
        ("s3://bucket/folder/", "--schema must name a file"),
        ("/", "--schema must be a file, not a folder"),
        ("/nonexistent-dir/schema.yaml", "--schema file's folder does not exist"),
        ("gs://bucket/s.yaml", "--schema must be a local file or an s3:// URI"),
    ],
)
def test_schema_locations(schema: str, message: str) -> None:
    from pipelines.plan import schema_location

    with pytest.raises(BadInputError, match=message):
        schema_location(schema)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from pipelines.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_stablepipe_alone_lists_the_commands_and_exits_2(capsys) -> None:
    code, out, err = run_cli([], capsys)
    assert code == 2 and out == ""
    for command in ("run", "validate", "predict", "compile", "submit"):
        assert f"  {command} " in err


def test_stablepipe_version(capsys) -> None:
    from components.common.kfp_component import PACKAGE_VERSION

    with pytest.raises(SystemExit) as done:
        run_cli(["--version"], capsys)
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"stablepipe {PACKAGE_VERSION}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--trails", "5"], "unknown flag '--trails'; did you mean '--trials'?"),
        (["validate", "--time-colum", "d"], "unknown flag '--time-colum'; did you mean"),
        # no abbreviations: --trial is not taken for --trials
        (["run", "--trial", "5"], "unknown flag '--trial'; did you mean '--trials'?"),
        (["run", "--trials", "many"], "--trials must be an integer; got 'many'"),
        (["run", "--task", "ranking"], "--task must be one of auto, binary, multiclass"),
        (["run", "extra"], "unexpected argument 'extra'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_command_line_mistakes_are_one_line_like_config_mistakes(
    argv: list[str], message: str, capsys
) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_help_shows_the_allowed_values_and_the_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        run_cli(["run", "--help"], capsys)
    shown = " ".join(capsys.readouterr().out.split())
    assert "--task {auto|binary|multiclass|regression}" in shown
    assert "(default: 600.0)" in shown and "--no-cache" in shown


def test_a_flag_and_a_config_key_are_one_setting(tmp_path: Path) -> None:
    from pipelines.cli import build_parser, config_of

    path = tmp_path / "run.yaml"
    path.write_text("time-budget: 30\nseries_key: store\ntime-column: day\n")
    parser, _ = build_parser()
    args = parser.parse_args(["run", "--config", str(path), "--data", "x.csv", "--target", "y"])
    config = config_of(args, "run")
    assert (config.time_budget, config.series_key, config.time_column) == (30.0, "store", "day")
    args = parser.parse_args(["run", "--config", str(path), "--time-budget", "9"])
    assert config_of(args, "run").time_budget == 9.0


@pytest.mark.parametrize("name", ["churn", "team/churn", "churn v2", "price.model"])
def test_model_names_that_stay_inside_the_registry(name: str) -> None:
    from pipelines.plan import registry_location

    config = build_config({}, {"model_name": name})
    assert registry_location(config) == str(Path("models").resolve() / name)


@pytest.mark.parametrize("name", ["../escaped", "/abs/olute", "a//b", ".", "team/..", "a\\b"])
def test_model_names_that_would_leave_the_registry_are_refused(name: str) -> None:
    with pytest.raises(BadInputError, match="--model-name names a folder inside the registry"):
        build_config({}, {"model_name": name})


@pytest.mark.parametrize(
    ("target", "entry"),
    [("churn flag", "churn-flag"), ("price.", "price."), (".hidden", ".hidden"), ("..", "model")],
)
def test_the_registry_entry_of_a_target(target: str, entry: str) -> None:
    """The target's name made path-safe, as before; `.` and `..` never name a folder."""
    from components.core.registry import entry_name

    assert entry_name("", target) == entry


def test_an_explicit_empty_target_is_refused_even_with_a_schema(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"^--target must name a column; got ''$"):
        build_config({}, {"data": "x.csv", "target": "", "schema": "s.yaml"}, True)


def test_an_empty_s3_endpoint_is_refused_where_s3_is_used() -> None:
    for flags in ({"store": "s3://mlops/churn"}, {"data": "s3://mlops/x.csv", "target": "y"}):
        with pytest.raises(BadInputError, match="--s3-endpoint must name the S3 endpoint"):
            build_config({}, {**flags, "s3_endpoint": ""})
    assert build_config({}, {"s3_endpoint": ""}).s3_endpoint == ""  # nothing reads S3


def test_a_registry_that_holds_a_champion_itself_is_not_a_root(tmp_path: Path) -> None:
    """The pipeline's `registry` is the registry root: given an entry (where a champion lives)
    it would hide the champion one folder down, so it is refused."""
    from components.core.registry import settings_registry
    from pipelines.plan import registry_location

    entry = tmp_path / "models" / "target"
    entry.mkdir(parents=True)
    (entry / "champion.json").write_text('{"version": "v1"}')
    with pytest.raises(BadInputError, match="holds a champion itself"):
        settings_registry(RunConfig(registry=str(entry)))
    with pytest.raises(BadInputError, match="holds a champion itself"):
        registry_location(RunConfig(registry=str(entry)))
    assert settings_registry(RunConfig(registry=str(tmp_path / "models"))) == str(entry)
