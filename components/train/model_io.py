"""The model artifact: a folder with the fitted scikit-learn Pipeline and its model card.

    model/
      model.joblib   the whole fitted Pipeline (preprocess -> features -> estimator)
      model.json     the card: task, target, input columns, classes, best configuration, versions

Loading unpickles the Pipeline, so load only models your own runs produced.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from components.common.errors import BadInputError

MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"


@dataclass
class LoadedModel:
    pipeline: Any
    card: dict[str, Any]
    version: str | None = None


def save_model(folder: str | Path, pipeline: Any, card: dict[str, Any]) -> None:
    """Write pipeline and card into `folder`, replacing it only once both are complete."""
    target = Path(folder)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    joblib.dump(pipeline, partial / MODEL_FILE, compress=3)
    (partial / CARD_FILE).write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)


def load_model(folder: str | Path) -> LoadedModel:
    """Load a model folder; BadInputError when it is not one."""
    path = Path(folder)
    if not (path / MODEL_FILE).is_file() or not (path / CARD_FILE).is_file():
        raise BadInputError(
            f"--model must be a model folder holding {MODEL_FILE} and {CARD_FILE}; "
            f"got {str(folder)!r}"
        )
    card = json.loads((path / CARD_FILE).read_text(encoding="utf-8"))
    return LoadedModel(pipeline=joblib.load(path / MODEL_FILE), card=card)


def model_input(frame: pd.DataFrame, card: dict[str, Any]) -> pd.DataFrame:
    """The columns the model was trained on, in training order; extra columns are ignored."""
    needed = list(card["input_columns"])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BadInputError(
            f"--data lacks {len(missing)} column(s) the model was trained on: {shown}"
        )
    return frame[needed]


def predict_frame(model: Any, X: pd.DataFrame, task: str) -> pd.DataFrame:
    """`prediction` plus, for classification, one `proba_<class>` column per class, in row order."""
    if task == "regression":
        return pd.DataFrame({"prediction": model.predict(X)}, index=X.index)
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    out = pd.DataFrame({"prediction": [classes[i] for i in proba.argmax(axis=1)]}, index=X.index)
    for column, cls in enumerate(classes):
        out[f"proba_{cls}"] = proba[:, column]
    return out
