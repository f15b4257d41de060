"""The model artifact: a folder with the fitted scikit-learn Pipeline and its model card.

    model/
      model.skops    the whole fitted Pipeline (preprocess -> features -> estimator), skops.io
      model.json     the card: task, target, input columns, classes, best configuration, versions

The Pipeline is stored with skops.io, not pickle: loading reads a description of the objects and
builds only the types named in TRUSTED_TYPES, so a tampered or foreign file cannot run code.
A file holding any other type is refused (BadInputError naming the types and the file).

Folders written by earlier versions of stablepipe hold `model.joblib`, a pickle. Those are refused
(LegacyModelError, with how to retrain); a registry whose champion is one is migrated by the
next run, which replaces it (see components/evaluate/logic.py `judge`).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common.errors import BadInputError

MODEL_FILE = "model.skops"
LEGACY_MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"

# Every type a model file may hold, by the fully qualified name skops records (module of the
# definition + name; scikit-learn's are often private modules). Loading refuses a file holding
# any other type, so a file from elsewhere cannot make us import and run something we never
# reviewed. tests/unit/test_model_io.py builds every model family x task x preprocessing and
# features variant and fails when its file holds a type missing here, and fails for any
# estimator class defined under components/ that is missing here.
#
# To add a type: add its name below (the failing test prints it), in the group it belongs to,
# after checking that building it from its stored attributes runs no code of the file's choosing
# (an estimator's __init__/__setstate__ that only stores values is fine; one that evaluates,
# imports or opens what an attribute names is not).
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # --- our own code (components/) ---
        "components.preprocess.logic.OutlierClipper",
        "components.preprocess.logic.as_category_strings",  # FunctionTransformer's function
        "components.features.text.TextFeatures",
        # forecasting: lag features with the series' recent history; the residual regressor
        "components.features.timeseries.TimeSeriesFeatures",
        "components.features.timeseries.SeasonalResidual",
        "components.features.logic.LatentComponents",  # --features svd
        "components.features.calendar.CalendarFeatures",  # datetime columns
        # --- scikit-learn: what build_preprocessor, build_features and make_model build ---
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.compose._target.TransformedTargetRegressor",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.impute._base.MissingIndicator",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._data.RobustScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.decomposition._pca.PCA",
        "sklearn.decomposition._truncated_svd.TruncatedSVD",
        "sklearn.feature_selection._from_model.SelectFromModel",  # --features select
        "sklearn.feature_selection._variance_threshold.VarianceThreshold",  # --features variance
        "sklearn.feature_extraction.text.HashingVectorizer",  # --text-vectorizer hashing
        "sklearn.preprocessing._target_encoder.TargetEncoder",  # high-cardinality categoricals
        "sklearn.model_selection._split.KFold",  # TargetEncoder's cross-fitting folds
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "sklearn.neighbors._regression.KNeighborsRegressor",
        "sklearn.svm._classes.SVC",
        "sklearn.svm._classes.SVR",
        "sklearn.calibration.CalibratedClassifierCV",
        # baselines a champion may be judged against (tests use them)
        "sklearn.dummy.DummyClassifier",
        "sklearn.dummy.DummyRegressor",
        # --- scikit-learn internals those estimators hold once fitted ---
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.Interval",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        # histogram gradient boosting's own input check: partial(check_array, ...)
        "sklearn.utils.validation.check_array",
        "functools.partial",
        # --- plain data: containers, numbers, strings, arrays ---
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.slice",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.random._generator.Generator",
        # numpy's scalar types (float64, int64, str_, ...): values and dtypes of arrays
        *(f"{kind.__module__}.{kind.__name__}" for kind in set(np.sctypeDict.values())),
    }
)


class UntrustedModelError(BadInputError):
    """A model file that holds a type outside TRUSTED_TYPES (or is no model file at all)."""


class LegacyModelError(BadInputError):
    """A model folder written by an earlier stablepipe as a pickle (model.joblib)."""


@dataclass
class LoadedModel:
    pipeline: Any  # None for a legacy champion that was not loaded (see `refused`)
    card: dict[str, Any]
    version: str | None = None
    refused: str | None = None  # why `pipeline` was not loaded


def save_model(folder: str | Path, pipeline: Any, card: dict[str, Any]) -> None:
    """Write pipeline and card into `folder`, replacing it only once both are complete.

    The file is checked before it is published: a model holding a type outside TRUSTED_TYPES
    would be refused by every reader, so it is an error here, where it was made."""
    import skops.io as sio

    target = Path(folder)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    sio.dump(pipeline, partial / MODEL_FILE, compression=zipfile.ZIP_DEFLATED)
    untrusted = untrusted_types(partial / MODEL_FILE)
    if untrusted:
        raise TypeError(
            f"the fitted model holds types missing from TRUSTED_TYPES in "
            f"components/train/model_io.py: {', '.join(untrusted)}; review them and add them"
        )
    (partial / CARD_FILE).write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)


def stored_types(path: str | Path) -> set[str]:
    """Every type a skops file names (module.name), read from its schema without building
    anything; UntrustedModelError when the file is not a skops file."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UntrustedModelError(
            f"{str(path)!r} is not a skops model file: {type(error).__name__}: {error}"
        ) from error
    return set(named_types(schema))


def named_types(node: Any) -> Iterator[str]:
    """The `__module__.__class__` of every object description in a skops schema (every dict
    is visited, so nothing skops would build is missed)."""
    if isinstance(node, dict):
        module, name = node.get("__module__"), node.get("__class__")
        if isinstance(module, str) and isinstance(name, str):
            yield f"{module}.{name}"
        for value in node.values():
            yield from named_types(value)
    elif isinstance(node, list):
        for value in node:
            yield from named_types(value)


def untrusted_types(path: str | Path) -> list[str]:
    """The types of a skops file outside TRUSTED_TYPES: ours and skops's own verdict."""
    import skops.io as sio

    found = stored_types(path) | set(sio.get_untrusted_types(file=path))
    return sorted(found - TRUSTED_TYPES)


def load_pipeline(path: str | Path, shown: str | None = None) -> Any:
    """Build the Pipeline of a skops file, after checking that it holds trusted types only.
    Messages name the file as `shown` (where it came from, when `path` is a local copy)."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    name = repr(shown or str(path))
    untrusted = untrusted_types(path)
    if untrusted:
        raise UntrustedModelError(
            f"refusing to load {name}: it holds types outside stablepipe's trusted list "
            f"(TRUSTED_TYPES): {', '.join(untrusted)}"
        )
    try:
        return sio.load(path, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException as error:  # skops's own audit, after ours
        raise UntrustedModelError(f"refusing to load {name}: {error}") from error
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # e.g. a class this installation does not have
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UntrustedModelError(
            f"{name} cannot be loaded: {type(error).__name__}: {first_line[:300]}"
        ) from error


def read_card(folder: str | Path) -> dict[str, Any]:
    """A model folder's card; BadInputError when it is not JSON (FileNotFoundError when it is
    missing: callers check for the files first, or a missing one is an internal failure)."""
    path = Path(folder) / CARD_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInputError(
            f"the model card {str(path)!r} is not readable JSON: {error}"
        ) from error


def legacy_message(folder: str | Path) -> str:
    return (
        f"{str(folder)!r} holds {LEGACY_MODEL_FILE}, a pickle written by an earlier stablepipe; "
        "loading a pickle can run arbitrary code, so stablepipe no longer loads them: retrain "
        f"with `stablepipe run` on the same data (it saves {MODEL_FILE}, and replaces a legacy "
        "champion in the registry)"
    )


def load_model(folder: str | Path, shown: str | None = None) -> LoadedModel:
    """Load a model folder; BadInputError when it is not one, LegacyModelError for a pickle.
    Messages name the folder as `shown` (where it came from, when `folder` is a local copy)."""
    path, name = Path(folder), shown or str(folder)
    if not (path / MODEL_FILE).is_file() and (path / LEGACY_MODEL_FILE).is_file():
        raise LegacyModelError(legacy_message(name))
    if not (path / MODEL_FILE).is_file() or not (path / CARD_FILE).is_file():
        raise BadInputError(
            f"--model must be a model folder holding {MODEL_FILE} and {CARD_FILE}; got {name!r}"
        )
    card = read_card(path)
    pipeline = load_pipeline(path / MODEL_FILE, f"{name.rstrip('/')}/{MODEL_FILE}")
    return LoadedModel(pipeline=pipeline, card=card)


def model_input(frame: pd.DataFrame, card: dict[str, Any]) -> pd.DataFrame:
    """The columns the model was trained on, in training order; extra columns are ignored.
    Infinite numbers become missing values, as ingest made them for training."""
    needed = list(card["input_columns"])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BadInputError(
            f"--data lacks {len(missing)} column(s) the model was trained on: {shown}"
        )
    X = frame[needed]
    numeric = X.select_dtypes("number").columns
    infinite = [c for c in numeric if np.isinf(X[c].to_numpy(dtype=float, na_value=np.nan)).any()]
    if infinite:
        X = X.copy()
        X[infinite] = X[infinite].replace([np.inf, -np.inf], np.nan)
    return X


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
