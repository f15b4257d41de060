"""The house rules, held by tests: who may import whom, one entry function per stage, and every
run setting declared once (the flags, the config keys and the pipelines' parameters all come
from the declarations, under one name)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from kfp import compiler

from components.common.errors import BadInputError
from components.common.settings import (
    BATCH_PREDICT,
    BY_NAME,
    DEFAULTS,
    PREDICT,
    RUN,
    SETTINGS,
    SUBMIT,
    TRAINING,
    VALIDATE,
    RunConfig,
    load_config_file,
    pipeline_settings,
    settings_of,
)
from pipelines.parameters import COMPUTED

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"
SHARED = ("common", "core")
STAGES = sorted(p.name for p in COMPONENTS.iterdir() if p.is_dir() and p.name not in SHARED)
KFP_TYPES = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool}


def imported_packages(path: Path) -> set[str]:
    """The `components.<package>` (or `pipelines`) names a module imports, anywhere in it
    (component bodies import inside the function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "components" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] == "pipelines":
                found.add("pipelines")
    return found


def test_the_stages_are_the_pipelines_steps() -> None:
    """A folder per step of the training pipeline (and of its exit step on the cluster) and of
    batch prediction, and nothing else."""
    from pipelines.local import STAGE_ORDER

    assert set(STAGES) == {*STAGE_ORDER, "notify", "resolve_model", "load_rows", "batch_predict"}


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_plumbing_and_core_never_another_stage(stage: str) -> None:
    for path in sorted((COMPONENTS / stage).glob("*.py")):
        wrong = imported_packages(path) - {*SHARED, stage}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_core_imports_common_and_common_imports_neither() -> None:
    for path in sorted((COMPONENTS / "core").rglob("*.py")):
        wrong = imported_packages(path) - {"common", "core"}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
    for path in sorted((COMPONENTS / "common").rglob("*.py")):
        wrong = imported_packages(path) - {"common"}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_has_one_entry_function_that_its_component_calls(stage: str) -> None:
    folder = COMPONENTS / stage
    assert {"__init__.py", "logic.py", "component.py", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    logic = importlib.import_module(f"components.{stage}.logic")
    assert len(logic.__all__) == 1, f"components/{stage}/logic.py: one entry function"
    entry = logic.__all__[0]
    assert inspect.isfunction(getattr(logic, entry))
    own = set()
    for node in ast.walk(ast.parse((folder / "component.py").read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            f"components.{stage}."
        ):
            own |= {alias.name for alias in node.names}
    assert own == {entry}, f"components/{stage}/component.py calls {sorted(own)}, not {entry}"


def compiled(pipeline: object, tmp_path: Path) -> dict:
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return next(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize(
    ("module", "name", "pipeline", "computed"),
    [
        (
            "pipelines.training",
            "training_pipeline",
            TRAINING,
            {"data_fingerprint", "files", "schema_version", "reference_version", "run_id"},
        ),
        (
            "pipelines.training",
            "cluster_pipeline",
            TRAINING,
            {"data_fingerprint", "files", "schema_version", "reference_version", "run_id"},
        ),
        ("pipelines.batch_predict", "batch_predict_pipeline", BATCH_PREDICT, set()),
    ],
)
def test_the_compiled_pipelines_parameters_are_the_declared_settings(
    tmp_path: Path, module: str, name: str, pipeline: str, computed: set[str]
) -> None:
    """What a Kubeflow UI user sees: each declared setting of the pipeline under its name,
    its type, its default and its help; the only other parameters are those the runner
    computes."""
    spec = compiled(getattr(importlib.import_module(module), name), tmp_path)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    declared = {s.name: s for s in pipeline_settings(pipeline)}
    assert set(parameters) - set(declared) == computed
    assert computed <= set(COMPUTED)
    assert set(declared) <= set(parameters)
    for setting_name, setting in declared.items():
        parameter = parameters[setting_name]
        assert KFP_TYPES[parameter["parameterType"]] is setting.kind, setting_name
        if pipeline in setting.required:  # a run must give it
            assert "defaultValue" not in parameter and not parameter.get("isOptional")
        else:
            assert parameter.get("defaultValue", "") == setting.default, setting_name
        assert parameter["description"] == setting.help, setting_name
    for computed_name in computed:
        assert parameters[computed_name]["description"] == COMPUTED[computed_name].help


def test_every_component_input_is_described_and_settings_keep_their_name_and_type(
    tmp_path: Path,
) -> None:
    from pipelines.batch_predict import batch_predict_pipeline
    from pipelines.training import training_pipeline

    for pipeline in (training_pipeline, batch_predict_pipeline):
        for component, body in compiled(pipeline, tmp_path)["components"].items():
            inputs = body.get("inputDefinitions", {})
            for kind in ("parameters", "artifacts"):
                for input_name, declared in inputs.get(kind, {}).items():
                    if input_name.startswith("pipelinechannel--"):  # KFP's, for dsl.If
                        continue
                    assert declared.get("description"), f"{component}.{input_name}"
                    if kind == "artifacts":
                        assert input_name not in BY_NAME, f"{component}.{input_name}"
                    elif input_name in BY_NAME:
                        kind_of = KFP_TYPES[declared["parameterType"]]
                        assert kind_of is BY_NAME[input_name].kind, f"{component}.{input_name}"


def test_the_runner_passes_exactly_the_pipelines_parameters(tmp_path: Path) -> None:
    from pipelines.plan import pipeline_arguments, plan_run
    from pipelines.training import training_pipeline

    config = RunConfig(runs_dir=str(tmp_path / "runs"), registry=str(tmp_path / "models"))
    arguments = pipeline_arguments(plan_run(config))
    parameters = compiled(training_pipeline, tmp_path)["root"]["inputDefinitions"]["parameters"]
    assert set(arguments) == set(parameters)
    assert arguments["time_budget"] == DEFAULTS.time_budget and arguments["data"] == config.data


@pytest.mark.parametrize("command", [RUN, VALIDATE, PREDICT, SUBMIT])
def test_every_setting_of_a_command_is_its_flag_under_its_name(command: str) -> None:
    from pipelines.cli import build_parser

    _, parsers = build_parser()
    flags = {
        action.dest: action.option_strings
        for action in parsers[command]._actions
        if action.option_strings
    }
    for setting in settings_of(command):
        assert flags.get(setting.name) == [setting.flag], setting.name


def test_every_setting_of_a_run_is_a_config_key_under_its_name(tmp_path: Path) -> None:
    """A config file is shared by run, validate and submit: it takes every setting of those
    (predict's own, such as `model`, are flags of predict only)."""
    path = tmp_path / "all.yaml"
    shared = [s for s in SETTINGS if s.commands & {RUN, VALIDATE, SUBMIT}]
    assert {s.name for s in SETTINGS} - {s.name for s in shared} == {"model"}
    path.write_text(yaml.safe_dump({s.name.replace("_", "-"): s.default for s in shared}))
    assert load_config_file(str(path)) == {s.name: s.default for s in shared}
    assert RunConfig(**load_config_file(str(path))) == RunConfig()
    path.write_text("model: models/churn/champion\n")
    with pytest.raises(BadInputError, match="unknown key 'model'; did you mean 'model_name'"):
        load_config_file(str(path))


def test_a_declared_default_passes_its_own_check() -> None:
    for setting in SETTINGS:
        if setting.name != "target" or setting.default:
            assert setting.message(setting.default) == "", setting.name


# What a helper that takes the whole settings reads of them.
READ_THROUGH = {
    "settings_registry": {"registry", "store", "model_name", "target"},
    "of": {"table", "query", "delimiter", "encoding", "header", "sheet", "decimal"},
}


def settings_read(function: ast.FunctionDef) -> set[str]:
    """The settings an entry function reads of its `settings` argument (also as `s`)."""
    read: set[str] = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("settings", "s")
        ):
            read.add(node.attr)
        if isinstance(node, ast.Call) and any(
            isinstance(arg, ast.Name) and arg.id in ("settings", "s") for arg in node.args
        ):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else None
            called = called or (node.func.id if isinstance(node.func, ast.Name) else "")
            read |= READ_THROUGH.get(called, set())
    return read & set(BY_NAME)


@pytest.mark.parametrize("stage", STAGES)
def test_an_entry_function_reads_only_the_settings_its_component_is_given(stage: str) -> None:
    """A component builds the settings from its own parameters: a setting its stage's entry
    reads but the component does not take would silently be the declared default."""
    logic = importlib.import_module(f"components.{stage}.logic")
    component = getattr(importlib.import_module(f"components.{stage}"), stage)
    tree = ast.parse(inspect.getsource(logic))
    entry = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == logic.__all__[0]
    )
    given = set(component.component_spec.inputs or {})
    missing = settings_read(entry) - given
    assert not missing, f"components/{stage}: the entry reads {sorted(missing)} it is not given"


def test_the_settings_table_of_the_common_readme_is_the_declarations(capsys) -> None:
    """components/common/README.md's settings table is what its own script prints from
    SETTINGS now: a changed declaration shows up as a stale table here."""
    text = (COMPONENTS / "common" / "README.md").read_text()
    script = text.split("The script (run from the repository root", 1)[1]
    script = script.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(script, "components/common/README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    assert printed and printed in text, "regenerate the table with the README's script"
