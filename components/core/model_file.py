"""The model artifact: a folder with the fitted scikit-learn Pipeline and its model card.

    model/
      model.skops    the whole fitted Pipeline (preprocess -> features -> estimator), skops.io
      model.json     the card: task, target, input columns, classes, best configuration, versions
      judged.skops   with a refit (the default; --no-refit: none): the Pipeline the test
                     metrics were measured on, fitted without the test split; model.skops is
                     then the same configuration refitted on all rows. Later runs compare
                     against this one.

The Pipeline is stored with skops.io, not pickle: loading reads a description of the objects and
builds only the types named in TRUSTED_TYPES, so a tampered or foreign file cannot run code.
A file holding any other type is refused (BadInputError naming the types and the file).

Folders written by earlier versions of stablepipe hold `model.joblib`, a pickle. Those are refused
(LegacyModelError, with how to retrain); a registry whose champion is one is migrated by the
next run, which replaces it (see components/evaluate/logic.py `judge`).
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired

import numpy as np
from typing_extensions import TypedDict

from components.common.errors import BadInputError
from components.common.readback import DamagedFile, parse_json, read_json_as

MODEL_FILE = "model.skops"
LEGACY_MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"
JUDGED_FILE = "judged.skops"

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
        "components.core.transformers.outliers.OutlierClipper",
        # FunctionTransformer's function (categorical columns as strings)
        "components.core.transformers.categories.as_category_strings",
        "components.core.transformers.text.TextFeatures",
        # forecasting: lag features with the series' recent history; the residual regressor
        "components.core.transformers.timeseries.TimeSeriesFeatures",
        "components.core.transformers.timeseries.SeasonalResidual",
        "components.core.transformers.latent.LatentComponents",  # --features svd
        "components.core.transformers.calendar.CalendarFeatures",  # datetime columns
        # LightGBM fitted with its categorical columns named
        "components.core.transformers.categories.NativeCategories",
        "components.core.transformers.categories.CatBoostCategories",
        # a regression fitted on log(1 + y) (TransformedTargetRegressor's transformer)
        "components.core.transformers.target.LogTarget",
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
        # the ensemble of the search's best trials (components/core/ensemble.py)
        "sklearn.ensemble._voting.VotingClassifier",
        "sklearn.ensemble._voting.VotingRegressor",
        "sklearn.utils._bunch.Bunch",  # their members by name
        # LightGBM: the estimators and their Booster, which skops rebuilds from the model's text
        # (LightGBM's own format: trees and numbers, parsed, never run)
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.basic.Booster",
        # CatBoost: skops rebuilds the estimator from its parameters and the model in CatBoost's
        # own binary format (trees and numbers, loaded by CatBoost, never run as code)
        "catboost.core.CatBoostClassifier",
        "catboost.core.CatBoostRegressor",
        "builtins.bytes",  # ... its model, as skops stores it
        # ... whose parameters skops stores as these dictionaries (their default_factory, if any,
        # is itself a stored type checked against this list)
        "collections.OrderedDict",
        "collections.defaultdict",
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


class Refit(TypedDict):
    """A refitted model's card entry: the rows it was fitted on, and those of the judged model."""

    rows: int
    judged_rows: int


class ModelCard(TypedDict):
    """What a model folder's card (model.json) holds: written by train and refit, read by
    evaluate, promote, predict and the next run's search. Keys added later are kept as they
    are."""

    target: str
    task: str
    input_columns: list[str]
    training_rows: int
    seed: int
    classes: NotRequired[list[str]]
    best: NotRequired[dict[str, Any]]  # model, params, metric, cv_score, cv_std
    timeseries: NotRequired[dict[str, Any] | None]
    roles: NotRequired[list[dict[str, Any]]]  # column, role, what the model does with it
    versions: NotRequired[dict[str, Any]]
    refit: NotRequired[Refit]


setattr(ModelCard, "__pydantic_config__", {"extra": "allow"})  # noqa: B010
# A skops file's object list nests a level or two per estimator, step and parameter: 39 for a
# forecasting pipeline. skops reads it recursively, so a bound keeps a hostile file from
# exhausting the stack.
SKOPS_DEPTH = 200
# ... and its size: skops writes it indented, about four times its content, and repeats a
# VotingClassifier's members (estimators_ and named_estimators_). An ensemble of eight boosted
# members refitted on 30,000 flights took 68 MB (parsed in 0.4 s at a peak of 146 MB), past
# the 64 MiB other documents are held to.
SKOPS_SCHEMA_BYTES = 256 * 2**20


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


def save_model(
    folder: str | Path, pipeline: Any, card: dict[str, Any], judged: str | Path | None = None
) -> None:
    """Write pipeline and card (and the skops file `judged`, as JUDGED_FILE, when the pipeline
    is its refit) into `folder`, replacing it only once all are complete.

    The model file is checked before it is published (`judged` was, when it was saved): a model
    holding a type outside TRUSTED_TYPES would be refused by every reader, so it is an error
    here, where it was made."""
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
            f"components/core/model_file.py: {', '.join(untrusted)}; review them and add them"
        )
    if judged is not None:  # a model file save_model wrote, and checked, before
        shutil.copyfile(judged, partial / JUDGED_FILE)
    (partial / CARD_FILE).write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)


def copy_model(source: str | Path, folder: str | Path) -> None:
    """Copy the model folder `source` to `folder`, replacing it only once the copy is whole."""
    target = Path(folder)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)


# Types of ours that moved since a model file naming them was written: the name the file holds
# -> where the type lives now. A file is read as if it named the new place (nothing else in it
# changes), so a champion trained by an earlier stablepipe still loads and can be compared.
MOVED_TYPES: dict[str, str] = {
    "components.preprocess.logic.OutlierClipper": (
        "components.core.transformers.outliers.OutlierClipper"
    ),
    "components.preprocess.logic.as_category_strings": (
        "components.core.transformers.categories.as_category_strings"
    ),
    "components.features.text.TextFeatures": "components.core.transformers.text.TextFeatures",
    "components.features.timeseries.TimeSeriesFeatures": (
        "components.core.transformers.timeseries.TimeSeriesFeatures"
    ),
    "components.features.timeseries.SeasonalResidual": (
        "components.core.transformers.timeseries.SeasonalResidual"
    ),
    "components.features.logic.LatentComponents": (
        "components.core.transformers.latent.LatentComponents"
    ),
    "components.features.calendar.CalendarFeatures": (
        "components.core.transformers.calendar.CalendarFeatures"
    ),
}


def skops_schema(data: bytes, shown: str) -> Any:
    """The object descriptions of a skops file's bytes; UntrustedModelError when the bytes are
    not a skops file or its description nests deeper than SKOPS_DEPTH."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            described = archive.read("schema.json")
        listing = f"the object list of {shown!r}"
        return parse_json(described, listing, max_depth=SKOPS_DEPTH, limit=SKOPS_SCHEMA_BYTES)
    except (zipfile.BadZipFile, KeyError) as error:
        raise UntrustedModelError(
            f"{shown!r} is not a skops model file: {type(error).__name__}: {error}"
        ) from error
    except DamagedFile as error:
        raise UntrustedModelError(f"refusing to load: {error}") from error


def stored_types(path: str | Path) -> set[str]:
    """Every type a skops file names (module.name), read from its schema without building
    anything; UntrustedModelError when the file is not a skops file."""
    return set(named_types(skops_schema(Path(path).read_bytes(), str(path))))


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


def rename_moved(node: Any) -> int:
    """Point the descriptions of MOVED_TYPES at where the types live now; returns how many."""
    renamed = 0
    if isinstance(node, dict):
        module, name = node.get("__module__"), node.get("__class__")
        moved = MOVED_TYPES.get(f"{module}.{name}") if isinstance(name, str) else None
        if moved is not None:
            node["__module__"] = moved.rpartition(".")[0]
            renamed += 1
        renamed += sum(rename_moved(value) for value in node.values())
    elif isinstance(node, list):
        renamed += sum(rename_moved(value) for value in node)
    return renamed


def current_bytes(path: str | Path) -> bytes:
    """A skops file's bytes, with the types that moved since it was written renamed (the same
    bytes when none did)."""
    data = Path(path).read_bytes()
    schema = skops_schema(data, str(path))
    if not rename_moved(schema):
        return data
    rewritten = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            content = source.read(member.filename)
            if member.filename == "schema.json":
                content = json.dumps(schema).encode()
            target.writestr(member, content)
    return rewritten.getvalue()


def untrusted_types(path: str | Path, data: bytes | None = None) -> list[str]:
    """The types of a skops file (or of its `data`) outside TRUSTED_TYPES: ours and skops's
    own verdict."""
    import skops.io as sio

    data = Path(path).read_bytes() if data is None else data
    found = set(named_types(skops_schema(data, str(path)))) | set(
        sio.get_untrusted_types(data=data)
    )
    return sorted(found - TRUSTED_TYPES)


def load_pipeline(path: str | Path, shown: str | None = None) -> Any:
    """Build the Pipeline of a skops file, after checking that it holds trusted types only.
    Messages name the file as `shown` (where it came from, when `path` is a local copy)."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    name = repr(shown or str(path))
    data = current_bytes(path)
    untrusted = untrusted_types(path, data)
    if untrusted:
        raise UntrustedModelError(
            f"refusing to load {name}: it holds types outside stablepipe's trusted list "
            f"(TRUSTED_TYPES): {', '.join(untrusted)}"
        )
    try:
        return sio.loads(data, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException as error:  # skops's own audit, after ours
        raise UntrustedModelError(f"refusing to load {name}: {error}") from error
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # e.g. a class this installation does not have
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UntrustedModelError(
            f"{name} cannot be loaded: {type(error).__name__}: {first_line[:300]}"
        ) from error


def read_card(folder: str | Path, shown: str = "") -> dict[str, Any]:
    """A model folder's card, checked against ModelCard; DamagedFile when it is not one
    (FileNotFoundError when it is missing: callers check for the files first, or a missing one
    is an internal failure)."""
    path = Path(folder) / CARD_FILE
    return card_of(path.read_bytes(), shown or str(path))


def card_of(data: bytes, shown: str) -> dict[str, Any]:
    """A model card's bytes, checked against ModelCard."""
    return dict(read_json_as(data, ModelCard, f"the model card {shown!r}"))


def legacy_message(folder: str | Path) -> str:
    return (
        f"{str(folder)!r} holds {LEGACY_MODEL_FILE}, a pickle written by an earlier stablepipe; "
        "loading a pickle can run arbitrary code, so stablepipe no longer loads them: retrain "
        f"with `stablepipe run` on the same data (it saves {MODEL_FILE}, and replaces a legacy "
        "champion in the registry)"
    )


def load_model(folder: str | Path, shown: str | None = None, judged: bool = False) -> LoadedModel:
    """Load a model folder; BadInputError when it is not one, LegacyModelError for a pickle.
    Messages name the folder as `shown` (where it came from, when `folder` is a local copy).
    With `judged`, the Pipeline its test metrics were measured on (JUDGED_FILE when the folder
    holds a refit, else MODEL_FILE): the one a later run's test split may fairly score."""
    path, name = Path(folder), shown or str(folder)
    if not (path / MODEL_FILE).is_file() and (path / LEGACY_MODEL_FILE).is_file():
        raise LegacyModelError(legacy_message(name))
    if not (path / MODEL_FILE).is_file() or not (path / CARD_FILE).is_file():
        raise BadInputError(
            f"--model must be a model folder holding {MODEL_FILE} and {CARD_FILE}; got {name!r}"
        )
    card = read_card(path)
    chosen = JUDGED_FILE if judged and (path / JUDGED_FILE).is_file() else MODEL_FILE
    pipeline = load_pipeline(path / chosen, f"{name.rstrip('/')}/{chosen}")
    return LoadedModel(pipeline=pipeline, card=card)
