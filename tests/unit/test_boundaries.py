"""Input at the command line's boundary that once got through: where outputs go, what --data
may name, flags that did nothing, secrets shown back. Each is exit 2 with one line, before any
work."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main


def one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


@pytest.fixture()
def rows(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    return path


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{tmp}/missing/p.csv", "must be a file in an existing folder"),
        ("/proc/p.csv", "cannot be written: its folder '/proc' does not take files"),
        ("{tmp}/" + "x" * 300 + ".csv", "has a file name longer than 246 bytes"),
        ("{tmp}/p.xlsx", "--output must end in .parquet, .pq, .csv"),
        ("{tmp}/p.json", "--output must end in .parquet, .pq, .csv"),
        ("{tmp}/rows.csv", "--output must not be the --data file"),
    ],
)
def test_predict_output_is_checked_before_anything_is_read(
    output: str, message: str, rows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = rows.read_bytes()
    argv = ["predict", "--model", str(tmp_path / "no-model"), "--data", str(rows)]
    line = one_line_exit_2([*argv, "--output", output.format(tmp=tmp_path)], capsys)
    assert message in line, line
    assert rows.read_bytes() == before  # the input is never overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]  # no probe left behind


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "--data needs a value"),
        ("   ", "--data needs a value"),
        ("file:///tmp/x.csv", "--data scheme 'file://' is not supported"),
        ("http://example.com/x.csv", "--data scheme 'http://' is not supported"),
        ("gs://bucket/x.csv", "--data scheme 'gs://' is not supported"),
    ],
)
def test_data_that_names_nothing_readable_says_what_is_supported(
    data: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line_exit_2(["validate", "--data", data, "--target", "b"], capsys)
    assert message in line and "s3://bucket/prefix" in line, line


@pytest.mark.parametrize(("flag", "value"), [("--table", "events"), ("--query", "SELECT 1")])
def test_database_flags_with_a_file_are_refused_not_ignored(
    flag: str, value: str, rows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line_exit_2(["validate", "--data", str(rows), "--target", "b", flag, value], capsys)
    assert f"{flag} needs a database URL" in line and str(rows) in line


@pytest.mark.parametrize(
    ("argv", "secret"),
    [
        (["validate", "--data", "postgresql://app:p@ss@localhost:1/db", "--table", "t"], "ss@"),
        (["validate", "--data", "http://user:hunter2@host/x.csv"], "hunter2"),
        (["run", "--s3-endpoint", "http://AKIA:s3cr3t@minio:9000"], "s3cr3t"),
    ],
)
def test_secrets_typed_into_a_flag_are_not_shown_back(
    argv: list[str], secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line_exit_2([*argv, "--target", "b"], capsys)
    assert secret not in line and "***" in line, line
