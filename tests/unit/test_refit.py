"""refit: the served model is the search's choice fitted on every row; train's model, which the
test metrics measured, is kept beside it, and later runs are judged against that one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from components.common.settings import RunConfig
from components.core.model_file import (
    JUDGED_FILE,
    MODEL_FILE,
    copy_model,
    load_model,
    save_model,
)
from components.core.registry import fetch_model, load_champion, publish_version
from components.core.scoring import model_input
from components.features.logic import feature_pipeline
from components.preprocess.logic import build_preprocessor
from components.refit.logic import all_rows, refit_model
from components.split.logic import split_by_time, split_frame
from components.train.logic import train_model
from components.validate.logic import infer_table_schema
from tests.unit.conftest import BEST_LINEAR


def test_the_refit_is_fitted_on_every_row_and_keeps_the_judged_model(
    titanic: pd.DataFrame, tmp_path: Path
) -> None:
    schema = infer_table_schema(titanic, "survived", "auto")
    train, test = split_frame(titanic, "survived", "binary", 0.2)
    steps = feature_pipeline(build_preprocessor(schema), "passthrough")
    judged, judged_card = train_model(train, steps, BEST_LINEAR, schema, RunConfig(seed=0))
    save_model(tmp_path / "trained", judged, judged_card)
    refitted = refit_model(train, test, steps, BEST_LINEAR, schema, RunConfig(seed=0))
    assert refitted is not None
    served, card = refitted
    save_model(tmp_path / "served", served, card, judged=tmp_path / "trained" / MODEL_FILE)

    assert card["training_rows"] == len(titanic) == len(train) + len(test)
    assert card["refit"] == {"rows": len(titanic), "judged_rows": len(train)}
    assert (
        card["best"] == judged_card["best"]
        and card["input_columns"] == judged_card["input_columns"]
    )
    X = model_input(test, card)
    # the refit saw the test rows: its predictions differ from the judged model's
    assert not np.allclose(served.predict_proba(X), judged.predict_proba(X))
    # the folder serves the refit; the judged model loads only when asked for
    folder = tmp_path / "served"
    np.testing.assert_allclose(
        load_model(folder).pipeline.predict_proba(X), served.predict_proba(X)
    )
    np.testing.assert_allclose(
        load_model(folder, judged=True).pipeline.predict_proba(X), judged.predict_proba(X)
    )
    # a folder without a refit answers `judged` with its only model
    only = load_model(tmp_path / "trained", judged=True).pipeline
    np.testing.assert_allclose(only.predict_proba(X), judged.predict_proba(X))

    # promoted: predict and batch predict get the refit; the next run's evaluation, the
    # judged model (the refit trained on the rows most of its test split holds)
    registry = tmp_path / "registry"
    verdict = {"metric": "roc_auc", "challenger": 0.8, "champion_version": None}
    publish_version(registry, folder, "v1", {"verdict": verdict})
    assert (registry / "versions" / "v1" / "model" / JUDGED_FILE).is_file()
    champion = load_champion(registry)
    assert champion is not None and champion.version == "v1"
    np.testing.assert_allclose(champion.pipeline.predict_proba(X), judged.predict_proba(X))
    fetched = fetch_model(str(registry / "champion")).pipeline
    np.testing.assert_allclose(fetched.predict_proba(X), served.predict_proba(X))
    assert (
        "refitted on all rows; the test metrics are of the model fitted on"
        in (registry / "versions" / "v1" / "MODEL_CARD.md").read_text()
    )

    # --no-refit: nothing is fitted, and the stage copies train's folder whole
    assert refit_model(train, test, steps, BEST_LINEAR, schema, RunConfig(refit=False)) is None
    copy_model(tmp_path / "trained", tmp_path / "kept")
    kept = sorted(p.name for p in (tmp_path / "kept").iterdir())
    assert kept == ["model.json", MODEL_FILE] and not (tmp_path / "kept.partial").exists()


def test_a_forecast_refit_reads_its_rows_in_time_order() -> None:
    """A forecast's test split is its latest period: the training split followed by it is every
    row in time order, so the refit's history ends with the latest rows."""
    co2 = sm.datasets.co2.load_pandas().data.dropna().rename_axis("date").reset_index()
    train, test = split_by_time(co2, "date", 0.2)
    rows = all_rows(train, test)
    assert len(rows) == len(co2) and rows["date"].is_monotonic_increasing
    assert rows["date"].iloc[-1] == co2["date"].max()
