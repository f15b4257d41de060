"""The model file: skops.io with an explicit list of trusted types, and old pickles refused."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

import components
from components.common.errors import BadInputError
from components.common.settings import FEATURE_CHOICES, OUTLIER_CHOICES, SCALING_CHOICES
from components.core.ensemble import ensemble_model
from components.core.families import FAMILIES, make_model
from components.core.metrics import score
from components.core.model_file import (
    CARD_FILE,
    LEGACY_MODEL_FILE,
    MODEL_FILE,
    TRUSTED_TYPES,
    LegacyModelError,
    UntrustedModelError,
    load_model,
    save_model,
    untrusted_types,
)
from components.core.registry import champion_pointer, fetch_model, load_champion, publish_version
from components.core.schema import input_columns
from components.core.scoring import model_input, score_rows, write_predictions
from components.evaluate.logic import evaluate_run, judge
from components.features.logic import build_features, feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.validate.logic import infer_table_schema
from pipelines.cli import main
from tests.unit.conftest import BEST_LINEAR, PARAMS

# target -> task, on titanic (regression: age, on the rows that have one)
TASKS = {"survived": "binary", "pclass": "multiclass", "age": "regression"}


def variants(task: str, text: bool) -> list[tuple[str, str, str, str]]:
    """(features method, outliers, scaling, family) to build. Binary: every family x features
    method, and every preprocessing variant. The other tasks: every family, and every features
    method (with a linear model: the features step's types depend on the task, not on the
    family). Text (slow to fit; its types depend on neither task nor features): every family,
    binary only."""
    if text:
        return [("none", "clip", "standard", f) for f in FAMILIES] if task == "binary" else []
    built = [("none", "clip", "standard", family) for family in FAMILIES]
    others = [f for f in FEATURE_CHOICES if f != "none"]
    if task != "binary":
        return built + [(f, "clip", "standard", "linear") for f in others]
    built += [(f, "clip", "standard", family) for f in others for family in FAMILIES]
    return built + [
        ("none", outliers, scaling, "linear")
        for outliers in OUTLIER_CHOICES
        for scaling in SCALING_CHOICES
        if (outliers, scaling) != ("clip", "standard")
    ]


def features_step(method: str, task: str) -> Any:
    """build_features for `method`, given the task when it takes one (`select` ranks columns
    by the target)."""
    options = {"task": task} if "task" in inspect.signature(build_features).parameters else {}
    return build_features(method, 0.9, 0, **options)


def fitted_models(passengers: pd.DataFrame) -> Iterator[tuple[str, Pipeline, pd.DataFrame]]:
    """What make_model builds, fitted: see `variants`."""
    for target, task in TASKS.items():
        for text in (False, True):
            frame = passengers.dropna(subset=[target]).reset_index(drop=True)
            frame = frame if text else frame.drop(columns=["note"])
            schema = infer_table_schema(frame, target, task)
            roles = {c["role"] for c in schema["columns"]}
            assert roles >= {"numeric", "categorical", *(["text"] if text else [])}, roles
            columns = input_columns(schema)
            for method, outliers, scaling, family in variants(task, text):
                steps = feature_pipeline(
                    build_preprocessor(schema, outliers, scaling), features_step(method, task)
                )
                model = make_model(steps, family, PARAMS[family], task, 0)
                if family == "hist_gradient_boosting":  # the types do not depend on how many
                    model.set_params(model__max_iter=10)
                with threadpool_limits(1):  # no thread oversubscription on a shared machine
                    model.fit(frame[columns], frame[target])
                name = f"{family}/{task}/text={text}/features={method}/{outliers}/{scaling}"
                yield name, model, frame[columns]
            if not text:  # the ensemble of the search's best trials: two families averaged
                steps = feature_pipeline(build_preprocessor(schema), features_step("none", task))
                members = [
                    (family, make_model(steps, family, PARAMS[family], task, 0), 0.5)
                    for family in ("lightgbm", "linear")
                ]
                with threadpool_limits(1):
                    model = ensemble_model(members, task).fit(frame[columns], frame[target])
                yield f"ensemble/{task}", model, frame[columns]
                # LightGBM early-stopped on held-out rows keeps what it scored on them (with
                # random split thresholds, as its last default)
                stopping = {**PARAMS["lightgbm"], "early_stopping": True, "extra_trees": True}
                del stopping["n_estimators"]  # with early stopping: its cap
                model = make_model(steps, "lightgbm", stopping, task, 0)
                with threadpool_limits(1):
                    model.fit(frame[columns], frame[target])
                assert model[-1].estimator_.best_iteration_ > 0
                yield f"lightgbm/{task}/early_stopping", model, frame[columns]
                if task == "regression":  # every family fitted on log(1 + age)
                    for family in FAMILIES:
                        params = {**PARAMS[family], "log_target": True}
                        model = make_model(steps, family, params, task, 0)
                        with threadpool_limits(1):
                            model.fit(frame[columns], frame[target])
                        yield f"{family}/{task}/log_target", model, frame[columns]


def test_every_model_we_build_holds_trusted_types_only(passengers, tmp_path: Path) -> None:
    """skops's own list of what it would not trust, and every type named in the file, are
    inside TRUSTED_TYPES for every model family x task x preprocessing x features variant; the
    loaded model predicts exactly as the fitted one."""
    assert set(PARAMS) == set(FAMILIES), "give the new family a configuration in PARAMS"
    missing: dict[str, set[str]] = {}
    for name, model, X in fitted_models(passengers):
        path = tmp_path / "model.skops"
        sio.dump(model, path)
        skops_untrusted = set(sio.get_untrusted_types(file=path))
        outside = (skops_untrusted - TRUSTED_TYPES) | set(untrusted_types(path))
        for kind in outside:
            missing.setdefault(kind, set()).add(name)
        if not outside:
            loaded = sio.load(path, trusted=sorted(TRUSTED_TYPES))
            ours, theirs = (
                (model.predict(X), loaded.predict(X))
                if not hasattr(model, "predict_proba")
                else (model.predict_proba(X), loaded.predict_proba(X))
            )
            assert np.array_equal(ours, theirs), name
    assert not missing, "add to TRUSTED_TYPES in components/core/model_file.py: " + "; ".join(
        f"{kind} (in {sorted(names)[0]})" for kind, names in sorted(missing.items())
    )


def own_modules() -> list[Any]:
    names = [m.name for m in pkgutil.walk_packages(components.__path__, "components.")]
    return [importlib.import_module(name) for name in names]


def test_every_estimator_class_of_ours_is_trusted() -> None:
    """A transformer or estimator class defined under components/ may end up in a model, so it
    must be reviewed and listed (this fails for a new one before any model holds it)."""
    ours = {
        f"{obj.__module__}.{obj.__name__}"
        for module in own_modules()
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseEstimator) and obj.__module__ == module.__name__
    }
    assert ours, "no estimator class found under components/"
    assert not ours - TRUSTED_TYPES, f"add to TRUSTED_TYPES: {sorted(ours - TRUSTED_TYPES)}"


def test_our_trusted_names_point_at_real_objects() -> None:
    """A class of ours that moved or was renamed leaves a stale name: it must be updated."""
    for name in sorted(t for t in TRUSTED_TYPES if t.startswith("components.")):
        module, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), name


def test_saved_as_skops_and_loaded_bit_identical(trained) -> None:
    model, card, test, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == [CARD_FILE, MODEL_FILE]
    assert not folder.with_name("model.partial").exists()
    loaded = load_model(folder)
    X = model_input(test, card)
    assert np.array_equal(loaded.pipeline.predict_proba(X), model.predict_proba(X))
    assert loaded.card == json.loads((folder / CARD_FILE).read_text())


def write_foreign_model(folder: Path, pipeline: Any, card: dict[str, Any]) -> Path:
    """A model folder as someone else could write it: any objects, dumped with skops."""
    folder.mkdir()
    sio.dump(pipeline, folder / MODEL_FILE)
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_type_outside_the_list_is_refused_and_never_built(
    trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file naming os.system in a FunctionTransformer is refused before anything is built;
    the CLI says so in one line naming the type and the file, and exits 2."""
    import os

    _, card, test, _ = trained
    evil = Pipeline([("run", FunctionTransformer(os.system))])
    folder = write_foreign_model(tmp_path / "evil", evil, card)
    with pytest.raises(UntrustedModelError, match="refusing to load") as refused:
        load_model(folder)
    assert str(folder / MODEL_FILE) in str(refused.value) and ".system" in str(refused.value)
    test.to_csv(tmp_path / "rows.csv", index=False)
    argv = ["predict", "--model", str(folder), "--data", str(tmp_path / "rows.csv")]
    code, err = run_cli([*argv, "--output", str(tmp_path / "out.csv")], capsys)
    assert code == 2 and len(err) == 1, err
    assert "refusing to load" in err[0] and ".system" in err[0] and str(folder) in err[0]
    assert not (tmp_path / "out.csv").exists()


def test_a_harmless_type_we_never_build_is_refused_too(trained, tmp_path: Path) -> None:
    """The list is an allow-list of what our models hold, not of what skops deems safe."""
    from sklearn.naive_bayes import GaussianNB

    _, card, test, _ = trained
    X = model_input(test, card).select_dtypes("number").fillna(0)
    other = Pipeline([("model", GaussianNB())]).fit(X, test["survived"])
    assert sio.get_untrusted_types(data=sio.dumps(other)) == []  # skops would load it
    folder = write_foreign_model(tmp_path / "other", other, card)
    with pytest.raises(UntrustedModelError, match=r"sklearn\.naive_bayes\.GaussianNB"):
        load_model(folder)
    with pytest.raises(TypeError, match="GaussianNB"):  # and we never write one
        save_model(tmp_path / "ours", other, card)
    assert not (tmp_path / "ours").exists()


def test_a_file_that_is_no_skops_file_is_bad_input(trained, tmp_path: Path) -> None:
    _, card, _, _ = trained
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(b"not a zip file")
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(BadInputError, match="is not a skops model file"):
        load_model(folder)


def test_a_large_object_list_loads_and_a_larger_one_is_refused(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose object list is past the 64 MiB other documents are held to (an ensemble
    of boosted members reached 68 MB) loads; one past SKOPS_SCHEMA_BYTES is refused."""
    import zipfile

    from components.core import model_file

    _, card, test, folder = trained
    copy = tmp_path / "large"
    shutil.copytree(folder, copy)
    with zipfile.ZipFile(folder / MODEL_FILE) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["schema.json"] += b" " * (70 * 2**20)  # valid JSON, 70 MiB longer
    with zipfile.ZipFile(copy / MODEL_FILE, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    loaded = load_model(copy)
    rows = test[card["input_columns"]].head(20)
    assert np.array_equal(loaded.pipeline.predict(rows), load_model(folder).pipeline.predict(rows))
    monkeypatch.setattr(model_file, "SKOPS_SCHEMA_BYTES", 70 * 2**20)
    with pytest.raises(UntrustedModelError, match="larger than 70 MiB"):
        load_model(copy)


def make_legacy(folder: Path) -> None:
    """Turn a model folder into one an earlier stablepipe wrote: the Pipeline as a pickle."""
    pipeline = sio.load(folder / MODEL_FILE, trusted=sorted(TRUSTED_TYPES))
    joblib.dump(pipeline, folder / LEGACY_MODEL_FILE)
    (folder / MODEL_FILE).unlink()


def test_a_legacy_pickle_is_refused_with_how_to_retrain(
    trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, test, folder = trained
    make_legacy(folder)
    with pytest.raises(LegacyModelError, match="retrain with `stablepipe run`"):
        load_model(folder)
    test.to_csv(tmp_path / "rows.csv", index=False)
    argv = ["predict", "--model", str(folder), "--data", str(tmp_path / "rows.csv")]
    code, err = run_cli([*argv, "--output", str(tmp_path / "out.csv")], capsys)
    assert code == 2 and len(err) == 1, err
    assert LEGACY_MODEL_FILE in err[0] and "retrain" in err[0] and str(folder) in err[0]


def test_a_legacy_champion_is_replaced_by_the_next_run_and_kept_on_a_failed_one(
    trained, tmp_path: Path
) -> None:
    """evaluate does not crash on a legacy champion: it cannot score it (it never unpickles
    it), so the new model replaces it; a run that fails before promotion leaves it as it was;
    the old version stays in the registry. A legacy champion of another target is kept."""
    model, card, test, folder = trained
    registry = tmp_path / "registry"
    publish_version(registry, folder, "old", {"verdict": {"metric": "roc_auc", "challenger": 0.8}})
    make_legacy(registry / "versions" / "old" / "model")
    pointer = (registry / "champion.json").read_bytes()

    champion = load_champion(registry)
    assert champion is not None and champion.pipeline is None and champion.version == "old"
    assert LEGACY_MODEL_FILE in str(champion.refused)
    with pytest.raises(LegacyModelError, match="versions/old/model"):
        fetch_model(str(registry / "champion"))
    X = model_input(test, card)
    metrics = score(model, X, test["survived"], "binary")
    verdict = judge(model, metrics, champion, test, X, "binary", "survived", 0.05)
    assert verdict.decision == "promote" and verdict.champion_version == "old"
    assert "cannot be compared" in verdict.reason and LEGACY_MODEL_FILE in verdict.reason

    other_target = load_champion(registry)
    assert other_target is not None
    other_target.card = {**other_target.card, "target": "pclass", "task": "multiclass"}
    kept = judge(model, metrics, other_target, test, X, "binary", "survived", 0.0)
    assert kept.decision == "keep" and "--model-name" in kept.reason

    with pytest.raises(BadInputError):  # a failed run: evaluate stops, nothing is published
        evaluate_run(tmp_path / "missing", test, [], BEST_LINEAR, champion, 0.0)
    assert (registry / "champion.json").read_bytes() == pointer

    new = publish_version(registry, folder, "new", {"verdict": verdict.as_dict()})
    assert new["previous"] == "old" and champion_pointer(registry) == new
    assert (registry / "versions" / "old" / "model" / LEGACY_MODEL_FILE).is_file()
    assert fetch_model(str(registry / "champion")).version == "new"


def test_scoring_infinite_numbers_as_training_saw_them(trained) -> None:
    """ingest turned infinite numbers into missing values for training; serving does too."""
    _, _, test, folder = trained
    loaded = load_model(folder)
    rows = test.reset_index(drop=True)
    infinite = rows.assign(age=rows["age"].where(rows.index % 2 == 0, np.inf))
    missing = rows.assign(age=rows["age"].where(rows.index % 2 == 0, np.nan))
    assert score_rows(loaded, infinite).equals(score_rows(loaded, missing))


def test_predictions_keep_their_values_in_parquet_and_csv(trained, tmp_path: Path) -> None:
    _, _, test, folder = trained
    scored = score_rows(load_model(folder), test)
    assert list(scored.columns) == ["prediction", "proba_died", "proba_survived"]
    write_predictions(scored, tmp_path / "p.parquet")
    write_predictions(scored, tmp_path / "p.csv")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), scored, check_exact=True)
    exact = {} if pd.__version__ >= "3" else {"float_precision": "round_trip"}
    as_csv = pd.read_csv(tmp_path / "p.csv", **exact)
    pd.testing.assert_frame_equal(as_csv, scored, check_exact=True, check_dtype=False)
    assert not list(tmp_path.glob("*.partial"))


def test_a_model_folder_copies_with_its_files(trained, tmp_path: Path) -> None:
    from components.core.registry import download_model

    _, _, _, folder = trained
    copied = download_model(str(folder), tmp_path / "copy")
    assert copied.version is None and (tmp_path / "copy" / MODEL_FILE).is_file()
    with pytest.raises(BadInputError, match="must be a model folder"):
        download_model(str(tmp_path / "nowhere"), tmp_path / "copy2")
    shutil.rmtree(tmp_path / "copy")


def test_predict_reads_decimal_commas_with_the_option(
    trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows saved with ';' and decimal commas score exactly as the same rows saved plainly,
    given --decimal , (the mark is never sniffed)."""
    _, _, test, folder = trained
    test.to_csv(tmp_path / "plain.csv", index=False)
    test.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    outputs = {}
    for name, extra in (("plain", []), ("eu", ["--decimal", ","])):
        out = tmp_path / f"{name}.parquet"
        argv = ["predict", "--model", str(folder), "--data", str(tmp_path / f"{name}.csv")]
        code, err = run_cli([*argv, *extra, "--output", str(out)], capsys)
        assert code == 0, err
        outputs[name] = pd.read_parquet(out)
    pd.testing.assert_frame_equal(outputs["eu"], outputs["plain"], check_exact=True)


EARLIER_LAYOUT = Path(__file__).parent / "data" / "earlier_layout"


@pytest.mark.parametrize("name", ["passengers", "co2"])
def test_a_model_written_before_our_types_moved_loads_and_predicts_the_same(name: str) -> None:
    """Model folders written by `stablepipe run` when the transformers lived in the stages
    (components.preprocess.logic.OutlierClipper, components.features.timeseries...): a
    registry's champion from then must still load, and predict exactly what it did then
    (`stablepipe predict` output recorded at the time). passengers holds the outlier
    clipper, category strings, text, calendar and SVD steps; co2 the forecasting ones."""
    from components.core.model_file import MOVED_TYPES, stored_types
    from components.core.scoring import score_rows
    from components.core.source.files import read_table

    folder = EARLIER_LAYOUT / name
    old_names = stored_types(folder / "model" / "model.skops") & set(MOVED_TYPES)
    assert old_names, "the fixture must name types at their earlier place"
    model = load_model(folder / "model")
    predictions = score_rows(model, read_table(str(folder / "rows.csv")))
    expected = pd.read_parquet(folder / "predictions.parquet")
    if model.card.get("timeseries"):  # forecasts are now led by the time and a marker
        assert list(predictions.columns[:2]) == ["date", "forecast"]
        assert (
            predictions["forecast"].tolist()
            == pd.read_csv(folder / "rows.csv")["co2"].isna().tolist()
        )
        predictions = predictions[expected.columns]
    pd.testing.assert_frame_equal(predictions.reset_index(drop=True), expected, check_exact=True)


def test_every_moved_type_points_at_a_trusted_type() -> None:
    from components.core.model_file import MOVED_TYPES

    assert set(MOVED_TYPES.values()) <= TRUSTED_TYPES
    assert not set(MOVED_TYPES) & TRUSTED_TYPES
