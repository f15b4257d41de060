"""Each stage's KFP component, run on its own under kfp.local SubprocessRunner(use_venv=False)."""

import json
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pytest
from kfp import dsl, local
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Metrics, Model

from components.check_quality import check_quality
from components.collect import collect
from components.common.settings import BY_NAME, DEFAULTS
from components.core.families import FAMILIES
from components.create_study import create_study
from components.evaluate import evaluate
from components.features import features
from components.ingest import ingest
from components.preprocess import preprocess
from components.promote import promote
from components.refit import refit
from components.split import split
from components.train import train
from components.tune import tune
from components.validate import validate


class ChainOutputs(NamedTuple):
    dataset: Dataset
    task: str
    schema: Artifact
    quality: Artifact
    quality_report: HTML
    train_split: Dataset
    test_split: Dataset
    preprocessor: Model
    feature_steps: Model
    worker_ids: list[int]
    best: Artifact
    model: Model
    served_model: Model
    decision: str
    metrics: Metrics
    classification_metrics: ClassificationMetrics
    report: HTML
    version: str


# The settings the chain runs with besides the declared defaults.
OVERRIDES: dict[str, Any] = {
    "target": "survived",
    "trials": 6,
    "time_budget": 120.0,
    "cv_folds": 3,
    "seed": 1,
    "workers": 2,
    "s3_endpoint": "",
}


def settings(component: Any, **given: Any) -> dict[str, Any]:
    """The component's setting inputs: `given`, else OVERRIDES, else the declared default."""
    names = [name for name in component.component_spec.inputs if name in BY_NAME]
    return {name: given.get(name, OVERRIDES.get(name, getattr(DEFAULTS, name))) for name in names}


@dsl.pipeline
def stage_chain(data: str, registry: str) -> ChainOutputs:
    """Every component once, wired by hand (kfp.local runs a lone component only with
    parameter inputs, so components that take artifacts are exercised inside this DAG)."""
    ingested = ingest(**settings(ingest, data=data), files=[], data_fingerprint="")
    dataset = ingested.outputs["dataset"]
    validated = validate(dataset=dataset, schema_version="", **settings(validate))
    table_schema = validated.outputs["table_schema"]
    task = validated.outputs["Output"]
    checked = check_quality(
        dataset=dataset,
        table_schema=table_schema,
        reference_version="",
        **settings(check_quality, registry=registry),
    )
    splits = split(dataset=dataset, **settings(split, task=task))
    prep = preprocess(
        train=splits.outputs["train"], table_schema=table_schema, **settings(preprocess)
    )
    feats = features(
        train=splits.outputs["train"],
        preprocessor=prep.outputs["preprocessor"],
        **settings(features, task=task),
    )
    study = create_study(**settings(create_study, task=task))
    with dsl.ParallelFor(items=[0, 1]) as index:
        worker = tune(
            study=study.outputs["study"],
            train=splits.outputs["train"],
            feature_steps=feats.outputs["feature_steps"],
            worker_index=index,
            **settings(tune, task="binary", registry=registry),
        )
    best = collect(
        study=study.outputs["study"],
        study_names=dsl.Collected(worker.output),
        **settings(collect),
    )
    trained = train(
        train_split=splits.outputs["train"],
        feature_steps=feats.outputs["feature_steps"],
        best=best.outputs["best"],
        table_schema=table_schema,
        **settings(train),
    )
    evaluated = evaluate(
        trained_model=trained.outputs["trained_model"],
        test=splits.outputs["test"],
        study=study.outputs["study"],
        best=best.outputs["best"],
        **settings(evaluate, registry=registry),
    )
    served = refit(
        trained_model=trained.outputs["trained_model"],
        train_split=splits.outputs["train"],
        test=splits.outputs["test"],
        feature_steps=feats.outputs["feature_steps"],
        best=best.outputs["best"],
        table_schema=table_schema,
        **settings(refit),
    )
    promoted = promote(
        served_model=served.outputs["served_model"],
        evaluation=evaluated.outputs["evaluation"],
        table_schema=table_schema,
        quality=checked.outputs["quality"],
        run_id="v1",
        job_id="6f1e3a52-0c7d-4b8e-9a51-2d4f0e7c9b13",
        data_fingerprint="sha256-of-the-chain's-data",
        **settings(promote, registry=registry),
    )
    return ChainOutputs(
        dataset=dataset,
        task=task,
        schema=table_schema,
        quality=checked.outputs["quality"],
        quality_report=checked.outputs["quality_report"],
        train_split=splits.outputs["train"],
        test_split=splits.outputs["test"],
        preprocessor=prep.outputs["preprocessor"],
        feature_steps=feats.outputs["feature_steps"],
        worker_ids=study.outputs["Output"],
        best=best.outputs["best"],
        model=trained.outputs["trained_model"],
        served_model=served.outputs["served_model"],
        decision=evaluated.outputs["Output"],
        metrics=evaluated.outputs["metrics"],
        classification_metrics=evaluated.outputs["classification_metrics"],
        report=evaluated.outputs["report"],
        version=promoted.output,
    )


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory, titanic: pd.DataFrame) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kfp")
    data = root / "titanic.csv"
    titanic.to_csv(data, index=False)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "outputs"))
    registry = root / "registry"
    outputs = dict(stage_chain(data=str(data), registry=str(registry)).outputs)
    outputs["registry"] = registry / "survived"
    return outputs


def test_a_lone_component_with_parameter_inputs_runs(tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    task = create_study(task="regression", workers=3)
    assert task.outputs["Output"] == [0, 1, 2]
    spec = json.loads((Path(task.outputs["study"].path) / "study.json").read_text())
    assert spec["direction"] == "minimize" and spec["metric"] == "rmse"


def test_ingest_component(stages: dict[str, Any], titanic: pd.DataFrame) -> None:
    dataset = stages["dataset"]
    assert len(pd.read_parquet(dataset.path)) == len(titanic)
    assert dataset.metadata["rows"] == len(titanic) and len(dataset.metadata["sha256"]) == 64


def test_validate_component(stages: dict[str, Any]) -> None:
    assert stages["task"] == "binary"
    schema = json.loads(Path(stages["schema"].path).read_text())
    assert schema["target"] == "survived" and len(schema["columns"]) == 5


def test_check_quality_component(stages: dict[str, Any]) -> None:
    quality = json.loads(Path(stages["quality"].path).read_text())
    assert quality["verdict"] in ("pass", "warn") and quality["drift"]["verdict"] == "no_reference"
    assert stages["quality"].metadata["verdict"] == quality["verdict"]
    assert Path(stages["quality_report"].path).read_text().startswith("<!doctype html>")


def test_split_component(stages: dict[str, Any], titanic: pd.DataFrame) -> None:
    train_rows = len(pd.read_parquet(stages["train_split"].path))
    test_rows = len(pd.read_parquet(stages["test_split"].path))
    assert train_rows + test_rows == len(titanic) and test_rows == 262


def test_preprocess_and_features_components(stages: dict[str, Any]) -> None:
    import joblib

    assert stages["preprocessor"].metadata["features_out"] > 5
    steps = joblib.load(stages["feature_steps"].path)
    assert [name for name, _ in steps.steps] == ["preprocess", "features"]


def test_search_components_share_one_study(stages: dict[str, Any]) -> None:
    assert stages["worker_ids"] == [0, 1]
    best = json.loads(Path(stages["best"].path).read_text())
    assert best["trials"]["total"] in (6, 7)  # two workers racing may overshoot by one
    assert best["studies"] and all(name.startswith("stablepipe-") for name in best["studies"])
    assert best["model"] in FAMILIES


def test_train_evaluate_promote_components(stages: dict[str, Any]) -> None:
    model_dir = Path(stages["model"].path)
    assert (model_dir / "model.skops").is_file() and (model_dir / "model.json").is_file()
    assert stages["decision"] == "promote"
    assert set(stages["metrics"].metadata) == {"roc_auc", "accuracy", "f1_macro", "log_loss"}
    assert "<img" in Path(stages["report"].path).read_text()
    assert "confusionMatrix" in stages["classification_metrics"].metadata
    assert "confidenceMetrics" in stages["classification_metrics"].metadata
    assert stages["version"] == "v1"
    pointer = json.loads((stages["registry"] / "champion.json").read_text())
    assert pointer["version"] == "v1"
    assert pointer["data_fingerprint"] == "sha256-of-the-chain's-data"  # for the retrain check
    # refit: the served model is fitted on every row, train's model kept beside it
    trained = json.loads((model_dir / "model.json").read_text())
    served_dir = Path(stages["served_model"].path)
    served = json.loads((served_dir / "model.json").read_text())
    rows = len(pd.read_parquet(stages["train_split"].path)) + len(
        pd.read_parquet(stages["test_split"].path)
    )
    assert served["training_rows"] == rows > trained["training_rows"]
    assert served["refit"] == {"rows": rows, "judged_rows": trained["training_rows"]}
    assert (served_dir / "judged.skops").read_bytes() == (model_dir / "model.skops").read_bytes()
    published = stages["registry"] / "versions" / "v1" / "model"
    for name in ("model.skops", "judged.skops"):  # promote publishes refit's folder
        assert (published / name).read_bytes() == (served_dir / name).read_bytes()
