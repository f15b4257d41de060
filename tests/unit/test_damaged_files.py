"""Files read back, damaged or hostile: each is one line naming the file and what is wrong
(exit 2 from the CLI), never a traceback, a hang or memory without bound; nothing is written."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from components.common.readback import MAX_DEPTH, DamagedFile, parse_json, parse_yaml
from components.common.settings import load_config_file
from components.common.storage import open_storage
from components.core.model_file import CARD_FILE, MODEL_FILE, UntrustedModelError, load_model
from components.core.registry import POINTER, champion_pointer, history
from components.core.schema import parse_schema
from components.core.source.incremental import load_watermark, watermark_key
from components.core.study import SPEC_NAME, study_spec
from pipelines.cli import main

DEEP_YAML = "a: " + "[" * 20_000 + "]" * 20_000 + "\n"
DEEP_JSON = "[" * 100_000 + "]" * 100_000
# nine levels of nine aliases each: 9**9 leaves if expanded
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP_YAML, f"nested deeper than {MAX_DEPTH} levels"),
        (LAUGHS, "anchors and aliases"),
        ("trials: [1\n", "is not valid YAML"),
    ],
)
def test_a_hostile_config_file_is_one_line(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(text)
    line = one_line_exit_2(["run", "--config", str(config)], capsys)
    assert message in line and str(config) in line


def test_a_fifo_as_config_is_refused_without_being_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    assert "must be a regular YAML file" in one_line_exit_2(["run", "--config", str(fifo)], capsys)


@pytest.mark.parametrize(("text", "message"), [(DEEP_YAML, "nested deeper"), (LAUGHS, "alias")])
def test_a_hostile_schema_file_is_refused(text: str, message: str) -> None:
    with pytest.raises(DamagedFile, match=message):
        parse_schema(text, "schema.yaml")


def test_json_deeper_than_the_bound_is_refused_however_deep() -> None:
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f") is not None
    for depth in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(DamagedFile, match="nested deeper than"):
            parse_json("[" * depth + "]" * depth, "f")


def test_yaml_at_the_bound_is_read() -> None:
    assert parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1), "f") is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "is damaged: the document: Input should be a valid dictionary"),
        ("garbage", "is not valid JSON"),
        (DEEP_JSON, "nested deeper than"),
        ('{"version": 3}', "is damaged: version: Input should be a valid string"),
        ('{"version": "v3"}', "is damaged: run_id: Field required"),
        ("\xff\xfe", "is not valid JSON"),
    ],
)
def test_a_damaged_champion_pointer_stops_the_run_before_it_starts(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pointer is read while the run is planned: one line naming it, no run folder, and
    the registry as it was."""
    registry = tmp_path / "models"
    pointer = registry / "target" / POINTER  # the demo's entry: its target is `target`
    pointer.parent.mkdir(parents=True)
    pointer.write_text(content)
    before = pointer.read_bytes()
    runs = tmp_path / "runs"
    argv = ["run", "--registry", str(registry), "--runs-dir", str(runs)]
    line = one_line_exit_2(argv, capsys)
    assert message in line and "champion pointer" in line and str(pointer) in line
    assert pointer.read_bytes() == before and sorted(registry.rglob("*")) == [
        pointer.parent,
        pointer,
    ]
    assert not runs.exists() or not [p for p in runs.iterdir() if p.name != ".kfp"]


def test_a_damaged_history_entry_is_named(tmp_path: Path) -> None:
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "2026-v1.json").write_text('{"version": "v1"}')
    with pytest.raises(DamagedFile, match=r"history entry .*2026-v1.json.* Field required"):
        history(tmp_path)


def test_a_pointer_with_later_keys_keeps_them(tmp_path: Path) -> None:
    pointer = {"version": "v1", "run_id": "v1", "metric": "roc_auc", "score": 0.9}
    pointer |= {"previous": None, "promoted_at": "2026-12-02T00:00:00Z", "by": "a later release"}
    (tmp_path / POINTER).write_text(json.dumps(pointer))
    assert champion_pointer(tmp_path) == pointer


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("[]", "Input should be a valid dictionary"),
        ('{"target": "y", "task": "binary"}', "input_columns: Field required"),
        ('{"target": "y", "task": "binary", "input_columns": "x"}', "input_columns"),
        ("{", "is not valid JSON"),
    ],
)
def test_a_damaged_model_card_is_one_line_from_predict(
    card: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / MODEL_FILE).write_bytes(b"not read: the card is read first")
    (model / CARD_FILE).write_text(card)
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    output = tmp_path / "out.csv"
    argv = ["predict", "--model", str(model), "--data", str(rows), "--output", str(output)]
    line = one_line_exit_2(argv, capsys)
    assert message in line and "model card" in line and str(model / CARD_FILE) in line
    assert not output.exists()


def test_a_skops_object_list_nested_without_end_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", '{"content": ' * 100_000 + "1" + "}" * 100_000)
    model = tmp_path / "model"
    model.mkdir()
    (model / MODEL_FILE).write_bytes(buffer.getvalue())
    card = {"target": "y", "task": "binary", "input_columns": ["x"], "training_rows": 1}
    (model / CARD_FILE).write_text(json.dumps({**card, "seed": 0}))
    with pytest.raises(UntrustedModelError, match=r"refusing to load: .* nested deeper than 200"):
        load_model(model)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("garbage", "is not valid JSON"),
        ('{"files": [{"name": "a.csv"}]}', r"files\.0\.tag: Field required"),
        ('{"files": "all"}', "files: Input should be a valid list"),
    ],
)
def test_a_corrupt_watermark_is_named(content: str, message: str, tmp_path: Path) -> None:
    store = open_storage(str(tmp_path))
    store.put_bytes(content.encode(), watermark_key(str(tmp_path / "landing")))
    with pytest.raises(DamagedFile, match=f"the watermark .*{message}"):
        load_watermark(store, str(tmp_path / "landing"))


def test_a_damaged_study_spec_is_named(tmp_path: Path) -> None:
    (tmp_path / SPEC_NAME).write_text('{"study_name": "s", "metric": "rmse", "direction": "up"}')
    with pytest.raises(DamagedFile, match=r"study spec .* direction: Input should be"):
        study_spec(tmp_path)


def test_the_config_reader_and_the_yaml_bound_agree(tmp_path: Path) -> None:
    """A config file at the bound's edge still reads (the bound is not below real files)."""
    config = tmp_path / "run.yaml"
    config.write_text("trials: 5\nroles:\n  month: categorical\n")
    assert load_config_file(str(config)) == {"trials": 5, "roles": "month=categorical"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("garbage", "is not valid JSON"),
        ('{"version": 1, "rows": 5, "columns": {"age": {"role": "numeric"}}}', "columns.age"),
        ('{"version": 2, "rows": 5, "columns": {}}', "version: Input should be 1"),
    ],
)
def test_a_damaged_data_profile_of_the_champion_is_named(
    content: str, message: str, tmp_path: Path
) -> None:
    from components.check_quality.logic import load_reference

    pointer = {"version": "v1", "run_id": "v1", "metric": "roc_auc", "score": 0.9}
    pointer |= {"previous": None, "promoted_at": "2026-12-02T00:00:00Z"}
    (tmp_path / POINTER).write_text(json.dumps(pointer))
    (tmp_path / "versions" / "v1").mkdir(parents=True)
    (tmp_path / "versions" / "v1" / "data_profile.json").write_text(content)
    with pytest.raises(DamagedFile, match=f"the data profile .*data_profile.json.*{message}"):
        load_reference("", str(tmp_path))
