"""Run configuration: defaults, a YAML file, then command-line flags, checked in one place."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from components.common.errors import BadInputError, closest_names
from components.common.storage import DEFAULT_S3_ENDPOINT, parse_endpoint, parse_s3_uri

DEMO_SOURCE = "demo:breast_cancer"
DEMO_TARGET = "target"
# numpy seeds must be below 2**32; workers use seed + worker index.
MAX_SEED = 2**32 - 64
MAX_WORKERS = 16  # parallel search workers of one run (the ParallelFor's parallelism)
TASKS = ("binary", "multiclass", "regression")
TASK_CHOICES = ("auto", *TASKS)
# after preprocessing: nothing, a variance filter, PCA, truncated SVD (takes sparse input) or a
# selection by a seeded tree ensemble's feature importances
FEATURE_CHOICES = ("none", "variance", "pca", "svd", "select")
TEXT_VECTORIZER_CHOICES = ("tfidf", "hashing")
MAX_TEXT_WORD_NGRAMS = 4
MAX_TEXT_CHAR_NGRAMS = 8
OUTLIER_CHOICES = ("clip", "none")
SCALING_CHOICES = ("standard", "robust", "none")
HEADER_CHOICES = ("auto", "yes", "no")
DECIMAL_CHOICES = (".", ",")
FAIL_ON_CHOICES = ("error", "warning", "never")


@dataclass
class RunConfig:
    """Everything a run needs; field names are the config file's keys (flags use dashes)."""

    data: str = DEMO_SOURCE
    target: str = DEMO_TARGET
    table: str = ""
    query: str = ""
    delimiter: str = ""
    encoding: str = ""
    header: str = "auto"
    sheet: str = ""
    decimal: str = "."
    stream_above_mb: float = 256.0
    incremental: bool = False
    window: int = 0
    schema: str = ""
    fail_on: str = "error"
    task: str = "auto"
    runs_dir: str = "runs"
    registry: str = "models"
    model_name: str = ""
    store: str = ""
    s3_endpoint: str = DEFAULT_S3_ENDPOINT
    trials: int = 30
    workers: int = 2
    time_budget: float = 600.0
    seed: int = 42
    test_size: float = 0.2
    cv_folds: int = 5
    outliers: str = "clip"
    scaling: str = "standard"
    max_categories: int = 20
    features: str = "none"
    pca_variance: float = 0.95
    svd_components: int = 100
    variance_threshold: float = 0.0
    # text columns: TF-IDF (or hashed) word and character n-grams, SVD for non-linear models
    text_vectorizer: str = "tfidf"
    text_word_ngrams: int = 2
    text_char_ngrams: int = 5
    text_max_terms: int = 20000
    text_components: int = 100
    min_improvement: float = 0.0
    confidence: float = 0.95
    cache: bool = True
    roles: str = ""  # column=role pairs, comma-separated: override the detected roles
    # forecasting: the time column, optional series keys (comma-separated), steps ahead
    time_column: str = ""
    series_key: str = ""
    horizon: int = 1
    season: int = 0  # steps per season; 0 = from the data's frequency

    def model_entry(self) -> str:
        """The registry entry's name: --model-name, else the target's name made path-safe."""
        name = self.model_name or re.sub(r"[^A-Za-z0-9_.-]+", "-", self.target).strip("-")
        return name or "model"

    def registry_uri(self) -> str:
        """`<store>/models/<name>` with a store, else the local `<registry>/<name>` (absolute)."""
        if self.store:
            return f"{self.store.rstrip('/')}/models/{self.model_entry()}"
        return str((Path(self.registry) / self.model_entry()).resolve())

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def coerce(name: str, value: Any, kind: type) -> Any:
    """Convert a config value to its field's type, naming the key on failure."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise BadInputError(f"config key {name!r} must be true or false; got {value!r}")
    try:
        if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise BadInputError(
            f"config key {name!r} must be {'an integer' if kind is int else 'a ' + kind.__name__}; "
            f"got {value!r}"
        ) from error


FIELD_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]
    for f in fields(RunConfig)
}


ROLE_CHOICES = ("numeric", "categorical", "ordinal", "text", "datetime", "id")


def parse_roles(given: str) -> dict[str, str]:
    """'age=numeric, zip=categorical' -> {'age': 'numeric', 'zip': 'categorical'}."""
    roles: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in given.split(","))):
        column, sep, role = (text.strip() for text in pair.partition("="))
        if not sep or not column or not role:
            raise BadInputError(
                f"--roles must be column=role pairs separated by commas; got {given!r}"
            )
        if role not in ROLE_CHOICES:
            raise BadInputError(
                f"--roles gives {column!r} the role {role!r}; roles: {', '.join(ROLE_CHOICES)}"
            )
        roles[column] = role
    return roles


def roles_text(value: Any) -> Any:
    """A config file's `roles:` mapping as the flag's text (a string passes unchanged)."""
    if isinstance(value, dict):
        return ",".join(f"{column}={role}" for column, role in value.items())
    return value


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML config file into {field: value}; unknown keys are an error with a hint."""
    file = Path(path)
    if not file.is_file():
        raise BadInputError(f"--config file does not exist: {path!r}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise BadInputError(
            f"--config file {path!r} is not valid YAML: {str(error).splitlines()[0]}"
        ) from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInputError(
            f"--config file {path!r} must hold a mapping of keys; got {type(raw).__name__}"
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in FIELD_TYPES:
            hint = closest_names(name, FIELD_TYPES)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise BadInputError(f"--config file {path!r} has an unknown key {key!r}{suffix}")
        if name == "roles":
            value = roles_text(value)
        values[name] = coerce(name, value, FIELD_TYPES[name])
    return values


def decimal_problem(decimal: str, delimiter: str) -> str:
    """What is wrong with a decimal mark and delimiter pair ('' when nothing): checked for a
    run's config and again by the readers' own options."""
    if decimal not in DECIMAL_CHOICES:
        return f"--decimal must be . or ,; got {decimal!r}"
    if decimal == "," and delimiter == ",":
        return "--decimal , needs another --delimiter (e.g. ';'): the comma cannot mark both"
    return ""


def check_config(config: RunConfig) -> RunConfig:
    """Fail early on values no run could use, naming the flag and the value."""
    decimal_error = decimal_problem(config.decimal, config.delimiter)
    checks: list[tuple[bool, str]] = [
        (
            config.task in TASK_CHOICES,
            f"--task must be one of {', '.join(TASK_CHOICES)}; got {config.task!r}",
        ),
        (config.trials >= 1, f"--trials must be a positive integer; got {config.trials!r}"),
        (
            0 <= config.seed < MAX_SEED,
            f"--seed must be between 0 and {MAX_SEED - 1}; got {config.seed!r}",
        ),
        (
            1 <= config.workers <= MAX_WORKERS,
            f"--workers must be between 1 and {MAX_WORKERS}; got {config.workers!r}",
        ),
        (
            config.time_budget > 0,
            f"--time-budget must be positive seconds; got {config.time_budget!r}",
        ),
        (
            0.05 <= config.test_size <= 0.5,
            f"--test-size must be between 0.05 and 0.5; got {config.test_size!r}",
        ),
        (
            2 <= config.cv_folds <= 10,
            f"--cv-folds must be between 2 and 10; got {config.cv_folds!r}",
        ),
        (
            config.features in FEATURE_CHOICES,
            f"--features must be one of {', '.join(FEATURE_CHOICES)}; got {config.features!r}",
        ),
        (
            config.outliers in OUTLIER_CHOICES,
            f"--outliers must be one of {', '.join(OUTLIER_CHOICES)}; got {config.outliers!r}",
        ),
        (
            config.scaling in SCALING_CHOICES,
            f"--scaling must be one of {', '.join(SCALING_CHOICES)}; got {config.scaling!r}",
        ),
        (
            config.max_categories >= 2,
            f"--max-categories must be at least 2; got {config.max_categories!r}",
        ),
        (
            0 < config.pca_variance < 1,
            f"--pca-variance must be between 0 and 1; got {config.pca_variance!r}",
        ),
        (
            config.svd_components >= 1,
            f"--svd-components must be at least 1; got {config.svd_components!r}",
        ),
        (
            config.variance_threshold >= 0,
            f"--variance-threshold must be 0 or more; got {config.variance_threshold!r}",
        ),
        (
            config.text_vectorizer in TEXT_VECTORIZER_CHOICES,
            f"--text-vectorizer must be one of {', '.join(TEXT_VECTORIZER_CHOICES)}; "
            f"got {config.text_vectorizer!r}",
        ),
        (
            0 <= config.text_word_ngrams <= MAX_TEXT_WORD_NGRAMS,
            f"--text-word-ngrams must be between 0 (no word n-grams) and {MAX_TEXT_WORD_NGRAMS}; "
            f"got {config.text_word_ngrams!r}",
        ),
        (
            config.text_char_ngrams == 0 or 2 <= config.text_char_ngrams <= MAX_TEXT_CHAR_NGRAMS,
            f"--text-char-ngrams must be 0 (no character n-grams) or between 2 and "
            f"{MAX_TEXT_CHAR_NGRAMS}; got {config.text_char_ngrams!r}",
        ),
        (
            config.text_word_ngrams > 0 or config.text_char_ngrams > 0,
            "--text-word-ngrams and --text-char-ngrams cannot both be 0 (no text features)",
        ),
        (
            config.text_max_terms >= 2,
            f"--text-max-terms must be at least 2; got {config.text_max_terms!r}",
        ),
        (
            config.text_components >= 1,
            f"--text-components must be at least 1; got {config.text_components!r}",
        ),
        (
            config.min_improvement >= 0,
            f"--min-improvement must be >= 0; got {config.min_improvement!r}",
        ),
        (
            0.5 <= config.confidence < 1,
            f"--confidence must be at least 0.5 and below 1; got {config.confidence!r}",
        ),
        (bool(config.target), "--target must name a column; got ''"),
        (
            config.header in HEADER_CHOICES,
            f"--header must be one of {', '.join(HEADER_CHOICES)}; got {config.header!r}",
        ),
        (not decimal_error, decimal_error),
        (
            config.fail_on in FAIL_ON_CHOICES,
            f"--fail-on must be one of {', '.join(FAIL_ON_CHOICES)}; got {config.fail_on!r}",
        ),
        (config.window >= 0, f"--window must be 0 or more; got {config.window!r}"),
        (
            config.stream_above_mb > 0,
            f"--stream-above-mb must be positive; got {config.stream_above_mb!r}",
        ),
        (
            not (config.table and config.query),
            f"give --table or --query, not both; got --table {config.table!r} and --query "
            f"{config.query!r}",
        ),
        (
            config.horizon >= 1,
            f"--horizon must be a positive number of steps; got {config.horizon!r}",
        ),
        (
            config.season >= 0,
            f"--season must be 0 (from the frequency) or more; got {config.season!r}",
        ),
        (
            bool(config.time_column) or not config.series_key,
            f"--series-key needs --time-column; got --series-key {config.series_key!r}",
        ),
        (
            not config.window or config.incremental,
            f"--window needs --incremental; got --window {config.window!r}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise BadInputError(message)
    parse_roles(config.roles)
    if config.store:
        if not config.store.startswith("s3://"):
            raise BadInputError(f"--store must be s3://bucket/prefix; got {config.store!r}")
        parse_s3_uri(config.store)
    if config.store or config.data.startswith("s3://"):
        parse_endpoint(config.s3_endpoint)
    return config


def build_config(file_values: dict[str, Any], flag_values: dict[str, Any]) -> RunConfig:
    """Defaults < config file < flags. A --data other than the demo needs a --target."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    if "data" in merged and not str(merged["data"]).startswith("demo:") and "target" not in merged:
        raise BadInputError(f"--target is required with --data {merged['data']!r}")
    return check_config(RunConfig(**merged))
