"""Every run setting, declared once: its name, type, default, allowed values, help and check.

Everything else is derived from these declarations, under the one name:

- the command line: `time_budget` is `--time-budget` (with its choices and default in `--help`);
  a boolean that defaults to false is a switch (`--incremental`), one that defaults to true is
  turned off with `--no-<name>` (`--no-cache`);
- the config file: the key `time_budget`, also written `time-budget`;
- the checks: `check_setting` gives every setting's one message, wherever a value arrives (the
  command line, the config file, a pipeline parameter typed into the Kubeflow UI, a stage);
- the pipelines' parameters and their defaults and descriptions (pipelines/parameters.py), and
  the component parameters of the same name (components/common/kfp_component.py documents them).

A setting's `commands` say which commands take it as a flag; `pipelines` say which pipelines
take it as a parameter. Settings that neither pipeline takes (runs_dir, incremental, window,
cache) are the local runner's own.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.common.errors import BadInputError, closest_names
from components.common.readback import check_size, parse_yaml
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
# the roles --roles may give a column (the schema adds constant and empty, which it finds)
ROLE_CHOICES = ("numeric", "categorical", "ordinal", "text", "datetime", "id")

# The commands and the pipelines a setting belongs to.
RUN, VALIDATE, SUBMIT, PREDICT, LAND = "run", "validate", "submit", "predict", "land"
TRAINING, BATCH_PREDICT = "training", "batch_predict"
DATA_COMMANDS = frozenset({RUN, VALIDATE, SUBMIT})  # the commands that read a run's data
TRAINING_COMMANDS = frozenset({RUN, SUBMIT})
READ_COMMANDS = DATA_COMMANDS | {PREDICT}
EVERY_PIPELINE = frozenset({TRAINING, BATCH_PREDICT})
PROMOTION_METRICS = ("auto", "roc_auc", "log_loss", "accuracy", "rmse", "mae")
# Upper bounds of settings whose cost grows with them, checked before anything is allocated:
# a week of search; term columns per kind of n-gram (a hashed block holds an IDF weight and a
# name per column: 2**20 columns are about 70 MB, where 10**9 asked for 7.45 GiB); dense
# dimensions kept by an SVD (rows x dimensions x 8 bytes: 1000 of them for a million rows is
# 8 GB).
WEEK = 7 * 24 * 3600
MAX_TERMS = 2**20
MAX_DIMENSIONS = 1000

GROUPS = (  # the sections of --help, in order
    "data",
    "data quality",
    "columns and forecasting",
    "search",
    "preprocessing and features",
    "promotion",
    "registry and store",
    "running",
)


@dataclass(frozen=True)
class Setting:
    """One run setting. `check` holds for every valid value; otherwise the message is
    `{flag} must be {expected}; got {value!r}` (or `problem(value)` when that says more)."""

    name: str
    kind: type
    default: Any
    help: str
    group: str
    commands: frozenset[str]
    pipelines: frozenset[str]
    choices: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    problem: Callable[[Any], str] | None = None
    # the commands and pipelines that take no default for it (it must be given)
    required: frozenset[str] = frozenset()

    @property
    def flag(self) -> str:
        """The command-line flag: `--time-budget`; `--no-cache` for a setting on by default."""
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.kind is bool and self.default else f"--{dashed}"

    @property
    def shown(self) -> str:
        """How messages name the setting: its flag without a `no-`."""
        return "--" + self.name.replace("_", "-")

    def message(self, value: Any) -> str:
        """What is wrong with `value` ('' when nothing)."""
        if self.kind is float and isinstance(value, int | float) and not math.isfinite(value):
            return f"{self.shown} must be a finite number; got {value!r}"
        if self.problem is not None and (found := self.problem(value)):
            return found
        if self.choices and value not in self.choices:
            return f"{self.shown} must be one of {', '.join(self.choices)}; got {value!r}"
        if self.check is not None and not self.check(value):
            return f"{self.shown} must be {self.expected}; got {value!r}"
        return ""


def setting(
    default: Any,
    help: str,
    group: str,
    *,
    commands: Iterable[str] = TRAINING_COMMANDS,
    pipelines: Iterable[str] = (TRAINING,),
    choices: tuple[str, ...] = (),
    check: Callable[[Any], bool] | None = None,
    expected: str = "",
    problem: Callable[[Any], str] | None = None,
    required: Iterable[str] = (),
) -> Any:
    """A RunConfig field and its declaration (the name and type come from the field)."""
    spec = {
        "help": help,
        "group": group,
        "commands": frozenset(commands),
        "pipelines": frozenset(pipelines),
        "choices": choices,
        "check": check,
        "expected": expected,
        "problem": problem,
        "required": frozenset(required),
    }
    return field(default=default, metadata={"setting": spec})


def roles_problem(value: str) -> str:
    try:
        parse_roles(value)
    except BadInputError as error:
        return str(error)
    return ""


def encoding_problem(value: str) -> str:
    if not value:
        return ""
    try:
        codecs.lookup(value)
    except LookupError:
        return (
            f"--encoding {value!r} is not an encoding Python knows "
            "(e.g. utf-8, cp1252, latin-1, utf-16)"
        )
    return ""


def store_problem(value: str) -> str:
    if not value:
        return ""
    if not value.startswith("s3://"):
        return f"--store must be s3://bucket/prefix; got {value!r}"
    try:
        parse_s3_uri(value)
    except BadInputError as error:
        return str(error)
    return ""


def endpoint_problem(value: str) -> str:
    if not value:  # no object store is used (a local run, a component run by hand)
        return ""
    try:
        parse_endpoint(value)
    except BadInputError as error:
        return str(error)
    return ""


def http_url_problem(flag: str, value: str, example: str) -> str:
    """What is wrong with an http(s) URL setting; the message shows the URL's scheme and host
    only (a webhook's path is its key)."""
    if not value:
        return ""
    parts = urlsplit(value)
    shown = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}..." if parts.netloc else "?"
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return f"{flag} has a port that is not a number; got {shown!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        short = value if len(value) <= 24 else f"{value[:24]}..."
        given = shown if parts.scheme in ("http", "https") else short
        return f"{flag} must be an http:// or https:// URL ({example}); got {given!r}"
    return ""


def model_name_problem(value: str) -> str:
    """The name is a folder (or folders: `team/churn`) inside the registry: never one outside
    it (an absolute path, `..`), never an empty or `.` segment, no backslash or control
    character."""
    segments = value.split("/")
    if value and (
        any(segment in ("", ".", "..") for segment in segments)
        or "\\" in value
        or any(ord(char) < 32 for char in value)
    ):
        return (
            f"--model-name names a folder inside the registry: segments separated by '/', none "
            f"empty, '.' or '..' and no backslash; got {value!r}"
        )
    return ""


@dataclass
class RunConfig:
    """Every setting of a run; the field names are the settings' names."""

    # --- data: where it comes from and how to read it
    data: str = setting(
        DEMO_SOURCE,
        "a file (CSV/TSV/Parquet/JSON/JSON Lines/Excel, .gz/.zip), a folder of them or of "
        "documents (one subfolder per label), s3://bucket/key-or-prefix/, a database URL "
        "(sqlite:///file.db, postgresql://host/db), a Kafka topic (kafka://host:9092/topic), or "
        "demo:<breast_cancer|diabetes|wine|iris>",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        required=(PREDICT, BATCH_PREDICT),
    )
    target: str = setting(
        DEMO_TARGET,
        "the column to predict (demo data: target; with --schema: the schema file's target)",
        "data",
        commands=DATA_COMMANDS,
        problem=lambda value: "" if value else "--target must name a column; got ''",
    )
    task: str = setting(
        "auto",
        "what to predict; auto infers it from the target",
        "data",
        commands=DATA_COMMANDS,
        choices=TASK_CHOICES,
    )
    table: str = setting(
        "",
        "with a database URL: the table to read (schema.table allowed)",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
    )
    query: str = setting(
        "",
        "with a database URL: a read-only SELECT to read instead of a table",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
    )
    delimiter: str = setting(
        "",
        "CSV delimiter (empty: sniffed from the first lines)",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        check=lambda value: len(value) <= 1,
        expected="one character",
    )
    encoding: str = setting(
        "",
        "text encoding of CSV/TSV files (empty: sniffed)",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        problem=encoding_problem,
    )
    header: str = setting(
        "auto",
        "does a CSV's first line name the columns (no: they are named column_1, column_2, ...)",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        choices=HEADER_CHOICES,
    )
    sheet: str = setting(
        "",
        "Excel sheet name (empty: the first)",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
    )
    decimal: str = setting(
        ".",
        "the decimal mark of CSV/TSV numbers, e.g. , for 29,5 in a ;-separated file (never "
        "sniffed: a comma may as well sit inside a text field)",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        choices=DECIMAL_CHOICES,
        problem=lambda value: (
            "" if value in DECIMAL_CHOICES else f"--decimal must be . or ,; got {value!r}"
        ),
    )
    query_timeout: float = setting(
        600.0,
        "seconds one database read (--table or --query) may run before the database stops it",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        check=lambda value: 1 <= value <= 86400,
        expected="between 1 and 86400 seconds",
    )
    max_read_mb: float = setting(
        4096.0,
        "the most MB read from one compressed file (.gz, .zip) once decompressed (a 3 MB gzip "
        "can hold 3 GiB of rows), or returned by one database --table/--query",
        "data",
        commands=READ_COMMANDS,
        pipelines=EVERY_PIPELINE,
        check=lambda value: 1 <= value <= 10**7,
        expected="between 1 and 10000000 (MB)",
    )
    stream_above_mb: float = setting(
        256.0,
        "local CSV/TSV/Parquet files at least this large are streamed in bounded memory",
        "data",
        commands=DATA_COMMANDS,
        check=lambda value: value > 0,
        expected="positive",
    )
    incremental: bool = setting(
        False,
        "with a folder or s3:// prefix: take only the files earlier runs have not taken",
        "data",
        commands=DATA_COMMANDS,
        pipelines=(),
    )
    window: int = setting(
        0,
        "with --incremental: also take the N latest files earlier runs took (a kafka:// "
        "topic: the N latest earlier records of each partition)",
        "data",
        commands=DATA_COMMANDS,
        pipelines=(),
        check=lambda value: value >= 0,
        expected="0 or more",
    )
    group: str = setting(
        "",
        "with --incremental and a kafka:// topic: the consumer group whose committed offsets "
        "say what earlier runs read (empty: stablepipe-<model name>)",
        "data",
        commands=DATA_COMMANDS,
        pipelines=(),
        check=lambda value: (
            value == "" or re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value) is not None
        ),
        expected="letters, digits, '.', '_' and '-' (at most 249)",
    )
    # --- data quality
    schema: str = setting(
        "",
        "schema YAML (a file or s3:// URI) to check the data against; written from this data "
        "if it does not exist yet (empty: the champion's schema)",
        "data quality",
        commands=DATA_COMMANDS,
    )
    fail_on: str = setting(
        "error",
        "the anomaly severity that rejects the data (never: only report)",
        "data quality",
        commands=DATA_COMMANDS,
        choices=FAIL_ON_CHOICES,
    )
    # --- columns and forecasting
    roles: str = setting(
        "",
        "override detected column roles: column=role pairs, comma-separated (roles: "
        + ", ".join(ROLE_CHOICES)
        + ")",
        "columns and forecasting",
        commands=DATA_COMMANDS,
        problem=roles_problem,
    )
    time_column: str = setting(
        "",
        "forecast: the column of dates or time steps (the test split is then the latest period "
        "and the model gets lags of the target)",
        "columns and forecasting",
        commands=DATA_COMMANDS,
    )
    series_key: str = setting(
        "",
        "forecast: the column(s), comma-separated, naming each series",
        "columns and forecasting",
        commands=DATA_COMMANDS,
    )
    known_ahead: str = setting(
        "",
        "forecast: the column(s), comma-separated, whose values are known for the rows to "
        "forecast (planned prices, holidays); every other column is used at its value "
        "--horizon steps earlier",
        "columns and forecasting",
        commands=DATA_COMMANDS,
    )
    horizon: int = setting(
        1,
        "forecast: how many steps ahead",
        "columns and forecasting",
        commands=DATA_COMMANDS,
        check=lambda value: value >= 1,
        expected="a positive number of steps",
    )
    season: int = setting(
        0,
        "forecast: steps per season (0: from the data's frequency)",
        "columns and forecasting",
        commands=DATA_COMMANDS,
        check=lambda value: value >= 0,
        expected="0 (from the frequency) or more",
    )
    # --- search
    trials: int = setting(
        0,
        "an optional cap on the trials of the whole search (all workers together): with one, "
        "a rerun gives the same model whatever the workers (0: no cap, the time budget decides)",
        "search",
        check=lambda value: value >= 0,
        expected="0 (no cap) or a positive integer",
    )
    workers: int = setting(
        2,
        f"parallel search workers, 1 to {MAX_WORKERS}, sharing one study",
        "search",
        check=lambda value: 1 <= value <= MAX_WORKERS,
        expected=f"between 1 and {MAX_WORKERS}",
    )
    time_budget: float = setting(
        60.0,
        "seconds the search takes, all workers together, the trial running at the end "
        "included (less when --trials is reached first)",
        "search",
        check=lambda value: 1 <= value <= WEEK,
        expected=f"between 1 and {WEEK} seconds (a week)",
    )
    seed: int = setting(
        42,
        "random seed of the search, the features and the models",
        "search",
        check=lambda value: 0 <= value < MAX_SEED,
        expected=f"between 0 and {MAX_SEED - 1}",
    )
    test_size: float = setting(
        0.2,
        "share of rows held out for the test split",
        "search",
        check=lambda value: 0.05 <= value <= 0.5,
        expected="between 0.05 and 0.5",
    )
    cv_folds: int = setting(
        0,
        "cross-validation folds of each search trial (0: 5 below 10,000 training rows, 3 from "
        "there: more trials in the same time where one fold already scores many rows)",
        "search",
        check=lambda value: value == 0 or 2 <= value <= 10,
        expected="0 (by size) or between 2 and 10",
    )
    ensemble: bool = setting(
        True,
        "serve an ensemble of the search's best trials when it beats the best trial in "
        "cross-validation (greedy selection over their out-of-fold predictions; --no-ensemble: "
        "the best trial alone)",
        "search",
    )
    # --- preprocessing and features
    outliers: str = setting(
        "clip",
        "numeric outliers: clip to Tukey's far-out fences learnt on the training rows (what "
        "linear models, neighbours and SVMs see; trees, which split on order, get the values as "
        "they are), or none",
        "preprocessing and features",
        choices=OUTLIER_CHOICES,
    )
    scaling: str = setting(
        "standard",
        "scaling of numeric columns",
        "preprocessing and features",
        choices=SCALING_CHOICES,
    )
    max_categories: int = setting(
        20,
        "most one-hot columns per categorical column (rarer values share one)",
        "preprocessing and features",
        check=lambda value: value >= 2,
        expected="at least 2",
    )
    features: str = setting(
        "none",
        "after preprocessing: none, a variance filter, PCA, truncated SVD, or select (the "
        "columns a seeded tree ensemble ranks above the mean importance)",
        "preprocessing and features",
        choices=FEATURE_CHOICES,
    )
    pca_variance: float = setting(
        0.95,
        "with --features pca: the share of variance the kept components explain",
        "preprocessing and features",
        check=lambda value: 0 < value < 1,
        expected="between 0 and 1",
    )
    svd_components: int = setting(
        100,
        "with --features svd: the most dimensions kept",
        "preprocessing and features",
        check=lambda value: 1 <= value <= MAX_DIMENSIONS,
        expected=f"between 1 and {MAX_DIMENSIONS}",
    )
    variance_threshold: float = setting(
        0.0,
        "with --features variance: columns whose training variance is at most this are "
        "dropped (0: the constant ones)",
        "preprocessing and features",
        check=lambda value: value >= 0,
        expected="0 or more",
    )
    text_vectorizer: str = setting(
        "tfidf",
        "text columns' terms: tfidf (a vocabulary) or hashing (no vocabulary, for huge ones)",
        "preprocessing and features",
        choices=TEXT_VECTORIZER_CHOICES,
    )
    text_word_ngrams: int = setting(
        2,
        "longest word n-gram of text columns (0: no word n-grams)",
        "preprocessing and features",
        check=lambda value: 0 <= value <= MAX_TEXT_WORD_NGRAMS,
        expected=f"between 0 (no word n-grams) and {MAX_TEXT_WORD_NGRAMS}",
    )
    text_char_ngrams: int = setting(
        5,
        "longest character n-gram of text columns, from 2 (0: none)",
        "preprocessing and features",
        check=lambda value: value == 0 or 2 <= value <= MAX_TEXT_CHAR_NGRAMS,
        expected=f"0 (no character n-grams) or between 2 and {MAX_TEXT_CHAR_NGRAMS}",
    )
    text_max_terms: int = setting(
        20000,
        "term columns per kind of n-gram (the vocabulary's or the hash's size)",
        "preprocessing and features",
        check=lambda value: 2 <= value <= MAX_TERMS,
        expected=f"between 2 and {MAX_TERMS} (2**20)",
    )
    text_components: int = setting(
        100,
        "SVD dimensions of text for non-linear models (linear models take every term)",
        "preprocessing and features",
        check=lambda value: 1 <= value <= MAX_DIMENSIONS,
        expected=f"between 1 and {MAX_DIMENSIONS}",
    )
    # --- promotion
    metric: str = setting(
        "auto",
        "the test metric promotion compares (auto: roc_auc for classification, rmse for "
        "regression); a tie on it is broken by a second one (log_loss, or mae)",
        "promotion",
        choices=PROMOTION_METRICS,
    )
    min_improvement: float = setting(
        0.0,
        "gain over the champion's primary metric, on this run's test split, needed to promote",
        "promotion",
        check=lambda value: value >= 0,
        expected=">= 0",
    )
    confidence: float = setting(
        0.95,
        "level of the paired-bootstrap interval of the gain that must lie above zero to promote",
        "promotion",
        check=lambda value: 0.5 <= value < 1,
        expected="at least 0.5 and below 1",
    )
    refit: bool = setting(
        True,
        "serve the chosen configuration refitted on all rows, the test split's included; the "
        "test metrics and the champion comparison keep the model fitted without them "
        "(--no-refit: serve that model)",
        "promotion",
    )
    # --- registry and store
    registry: str = setting(
        "models",
        "model registry root (a folder); the champion lives in <registry>/<model-name> (with "
        "--store: <store>/models/<model-name>)",
        "registry and store",
        commands=DATA_COMMANDS - {SUBMIT},
    )
    model_name: str = setting(
        "",
        "the registry entry (empty: the target's name)",
        "registry and store",
        commands=DATA_COMMANDS,
        problem=model_name_problem,
    )
    store: str = setting(
        "",
        "s3://bucket/prefix: keep the registry at <prefix>/models/ and publish runs to "
        "<prefix>/runs/ (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
        "registry and store",
        commands=DATA_COMMANDS - {SUBMIT},
        problem=store_problem,
    )
    s3_endpoint: str = setting(
        DEFAULT_S3_ENDPOINT,
        "S3 endpoint: http://host:port, https://host:port or host:port (TLS)",
        "registry and store",
        commands=(READ_COMMANDS - {SUBMIT}) | {LAND},
        pipelines=EVERY_PIPELINE,
        problem=endpoint_problem,
    )
    model: str = setting(
        "models/target/champion",
        "the model: a run's model folder (runs/<run_id>/model) or <registry>/<name>/champion, "
        "local or on S3",
        "registry and store",
        commands=(PREDICT,),
        pipelines=(BATCH_PREDICT,),
        required=(PREDICT,),
    )
    # --- running (the local runner's own)
    runs_dir: str = setting(
        "runs",
        "folder of run folders (and of the incremental watermarks without --store)",
        "running",
        commands=DATA_COMMANDS - {SUBMIT},
        pipelines=(),
    )
    cache: bool = setting(
        True,
        "reuse the stages an earlier run finished with the same inputs (--no-cache: run "
        "every stage again)",
        "running",
        pipelines=(),
    )
    pushgateway: str = setting(
        "",
        "Prometheus Pushgateway URL (http://host:9091) to push the run's metrics to when it "
        "ends; every run writes them to metrics.prom in its folder",
        "running",
        commands=(RUN,),
        pipelines=(),
        problem=lambda value: http_url_problem("--pushgateway", value, "http://host:9091"),
    )
    notify_url: str = setting(
        "",
        "webhook (Slack, Teams or any that takes JSON) to post one message to when the run "
        "fails after it started; also from STABLEPIPE_NOTIFY_URL; summary.json records only "
        "that one was set",
        "running",
        commands=(RUN,),
        pipelines=(),
        problem=lambda value: http_url_problem("--notify-url", value, "https://hooks.example/..."),
    )

    def as_dict(self) -> dict[str, Any]:
        """The run's settings (the config-file keys), as summary.json records them; a webhook's
        URL is its credential, recorded only as set or not."""
        settings = {name: getattr(self, name) for name in CONFIG_KEYS}
        return {**settings, "notify_url": "(set)" if self.notify_url else ""}


KINDS = {"str": str, "int": int, "float": float, "bool": bool}
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(name=f.name, kind=KINDS[str(f.type)], default=f.default, **f.metadata["setting"])
    for f in fields(RunConfig)
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
# The keys of a run's config file: the settings of the commands that run or check a training
# run (a config file is shared by run, validate and submit; predict takes flags only).
CONFIG_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.commands & DATA_COMMANDS)
# The declared defaults, for functions that take a setting (`outliers: str = DEFAULTS.outliers`).
DEFAULTS = RunConfig()


def settings_in(values: dict[str, Any]) -> dict[str, Any]:
    """The entries of `values` that are settings: a component passes its `locals()`, and its
    stage's entry function takes them by name."""
    return {name: value for name, value in values.items() if name in BY_NAME}


def settings_of(command: str) -> list[Setting]:
    """The settings a command takes as flags, in declaration order."""
    return [s for s in SETTINGS if command in s.commands]


def pipeline_settings(pipeline: str) -> list[Setting]:
    """The settings a pipeline takes as parameters, in declaration order."""
    return [s for s in SETTINGS if pipeline in s.pipelines]


def coerce(name: str, value: Any, shown: str) -> Any:
    """A value of the setting `name`'s type, from YAML or a flag's text; `shown` names where
    it came from (`--trials`, `config key 'trials'`)."""
    kind = BY_NAME[name].kind
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise BadInputError(f"{shown} must be true or false; got {value!r}")
    if value is None:
        raise BadInputError(f"{shown} needs a value; got nothing (null)")
    try:
        if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
            raise ValueError
        if kind is str and not isinstance(value, str | int | float):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise BadInputError(
            f"{shown} must be {'an integer' if kind is int else 'a ' + kind.__name__}; "
            f"got {value!r}"
        ) from error


def check_setting(name: str, value: Any) -> None:
    """BadInputError with the setting's one message when `value` is not valid for it."""
    if message := BY_NAME[name].message(value):
        raise BadInputError(message)


def check_settings(values: dict[str, Any]) -> None:
    """Check every value in `values` that is a setting's (other keys are passed over)."""
    for name, value in values.items():
        if name in BY_NAME:
            check_setting(name, value)


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
    """Read a YAML config file into {setting: value}; an unknown key is an error with a hint."""
    file = Path(path)
    if file.is_dir():
        raise BadInputError(f"--config must be a YAML file, not a folder; got {path!r}")
    if not file.exists():
        raise BadInputError(f"--config file does not exist: {path!r}")
    if not file.is_file():  # a FIFO or a device is never read: it could block or never end
        raise BadInputError(f"--config must be a regular YAML file; got {path!r}")
    shown = f"--config file {path!r}"
    check_size(file.stat().st_size, shown)  # before reading it
    raw = parse_yaml(file.read_bytes(), shown)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInputError(
            f"--config file {path!r} must hold a mapping of keys; got {type(raw).__name__}"
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in CONFIG_KEYS:
            hint = closest_names(name, CONFIG_KEYS)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise BadInputError(f"--config file {path!r} has an unknown key {key!r}{suffix}")
        if name == "roles":
            value = roles_text(value)
        values[name] = coerce(name, value, f"config key {name!r}")
    return values


def decimal_problem(decimal: str, delimiter: str) -> str:
    """What is wrong with a decimal mark and delimiter pair ('' when nothing): checked for a
    run's config and again by the readers' own options."""
    if message := BY_NAME["decimal"].message(decimal):
        return message
    if decimal == "," and delimiter == ",":
        return "--decimal , needs another --delimiter (e.g. ';'): the comma cannot mark both"
    return ""


def text_ngrams_problem(word_ngrams: int, char_ngrams: int) -> str:
    """Text columns need word or character n-grams (or both)."""
    if word_ngrams == 0 and char_ngrams == 0:
        return "--text-word-ngrams and --text-char-ngrams cannot both be 0 (no text features)"
    return ""


def relation_problems(config: RunConfig) -> list[str]:
    """What is wrong between settings, each fine on its own."""
    problems = [
        decimal_problem(config.decimal, config.delimiter),
        text_ngrams_problem(config.text_word_ngrams, config.text_char_ngrams),
        (
            f"give --table or --query, not both; got --table {config.table!r} and --query "
            f"{config.query!r}"
            if config.table and config.query
            else ""
        ),
        (
            f"--series-key needs --time-column; got --series-key {config.series_key!r}"
            if config.series_key and not config.time_column
            else ""
        ),
        (
            f"--known-ahead needs --time-column; got --known-ahead {config.known_ahead!r}"
            if config.known_ahead and not config.time_column
            else ""
        ),
        (
            f"--window needs --incremental; got --window {config.window!r}"
            if config.window and not config.incremental
            else ""
        ),
        (
            f"--group needs --incremental and a kafka:// --data; got --group {config.group!r}"
            if config.group and not (config.incremental and config.data.startswith("kafka://"))
            else ""
        ),
        (
            f"--s3-endpoint must name the S3 endpoint that --store or s3:// --data is read "
            f"through; got {config.s3_endpoint!r}"
            if not config.s3_endpoint.strip()
            and (
                config.store or config.data.startswith("s3://") or config.schema.startswith("s3://")
            )
            else ""
        ),
    ]
    return [problem for problem in problems if problem]


def check_config(config: RunConfig) -> RunConfig:
    """Fail early on values no run could use: each setting's check, then their relations."""
    for spec in SETTINGS:
        check_setting(spec.name, getattr(config, spec.name))
    for problem in relation_problems(config):
        raise BadInputError(problem)
    return config


def build_config(
    file_values: dict[str, Any], flag_values: dict[str, Any], target_from_schema: bool = False
) -> RunConfig:
    """Defaults < config file < flags (None: not given). Data other than a demo needs a
    target, unless the caller takes it from the schema file (`target_from_schema`; the target
    is then '' until it does)."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    data = str(merged.get("data", DEMO_SOURCE))
    from_schema = False
    if not data.startswith("demo:") and "target" not in merged:
        if not (target_from_schema and merged.get("schema")):
            raise BadInputError(f"--target is required with --data {data!r}")
        merged["target"], from_schema = "", True
    config = RunConfig(**merged)
    for spec in SETTINGS:
        if spec.name != "target" or not from_schema:  # the runner fills it in from the schema
            check_setting(spec.name, getattr(config, spec.name))
    for problem in relation_problems(config):
        raise BadInputError(problem)
    return config
