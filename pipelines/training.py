"""The training pipeline: ingest -> validate -> check_quality -> split -> preprocess -> features ->
create_study -> tune (ParallelFor workers sharing one study) -> collect -> train -> evaluate and
refit -> promote (dsl.If).

Its parameters are the run settings the training pipeline takes, under their names (`--time-
budget` is `time_budget`), plus the values the runner computes (pipelines/parameters.py). Each
task below gets its settings by name; only the artifacts and upstream values are wired here.
"""

import inspect
from typing import NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import HTML, Artifact, Dataset, Input, Model

from components.check_quality import check_quality
from components.collect import collect
from components.common.settings import BY_NAME, MAX_WORKERS, TRAINING
from components.create_study import create_study
from components.evaluate import evaluate
from components.features import features
from components.ingest import ingest
from components.notify import notify
from components.preprocess import preprocess
from components.promote import promote
from components.refit import refit
from components.split import split
from components.train import train
from components.tune import tune
from components.validate import validate
from pipelines.parameters import Parameters, graph_function, pipeline_function

PIPELINE_NAME = "stablepipe-training"
# Kubernetes Secrets the steps read credentials from (never pipeline parameters). Both are
# optional: without them a step runs with what its environment has (as under kfp.local,
# which ignores kfp.kubernetes settings).
S3_SECRET = "stablepipe-s3"  # keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
STUDY_SECRET = "stablepipe-optuna"  # key url: the SQLAlchemy URL of the shared study database
DATABASE_SECRET = "stablepipe-database"  # keys user, password: the source database's login
# keys username, password, security_protocol, sasl_mechanism: a Kafka topic's login
KAFKA_SECRET = "stablepipe-kafka"
NOTIFY_SECRET = "stablepipe-notify"  # key url: the webhook the failure alert is posted to
# The ConfigMap of the cluster settings (also the retraining trigger's: pipelines/cluster.py).
CONFIG_MAP = "stablepipe-config"
# The values the runner computes for each training run (see pipelines/parameters.py).
COMPUTED = ["data_fingerprint", "files", "schema_version", "reference_version", "run_id"]


def with_s3_credentials(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The object store's credentials, from the S3 Secret, as environment variables."""
    keys = {
        "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    }
    return kubernetes.use_secret_as_env(task, S3_SECRET, keys, optional=True)


def with_study_storage(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The shared Optuna database URL, from the study Secret (pods cannot share a journal file)."""
    return kubernetes.use_secret_as_env(
        task, STUDY_SECRET, {"url": "STABLEPIPE_OPTUNA_STORAGE"}, optional=True
    )


def with_database_credentials(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The source database's login, from the database Secret, for --data database URLs."""
    keys = {"user": "STABLEPIPE_DB_USER", "password": "STABLEPIPE_DB_PASSWORD"}
    return kubernetes.use_secret_as_env(task, DATABASE_SECRET, keys, optional=True)


def with_kafka_credentials(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """A Kafka topic's SASL login and protocol, from the Kafka Secret, for --data kafka://."""
    keys = {
        "username": "STABLEPIPE_KAFKA_USERNAME",
        "password": "STABLEPIPE_KAFKA_PASSWORD",
        "security_protocol": "STABLEPIPE_KAFKA_SECURITY_PROTOCOL",
        "sasl_mechanism": "STABLEPIPE_KAFKA_SASL_MECHANISM",
    }
    return kubernetes.use_secret_as_env(task, KAFKA_SECRET, keys, optional=True)


def with_retries(task: dsl.PipelineTask, attempts: int = 2) -> dsl.PipelineTask:
    """Retry a step that can fail transiently (a pod evicted, a storage lock timing out)."""
    return task.set_retry(
        num_retries=attempts, backoff_duration="5s", backoff_factor=2.0, backoff_max_duration="60s"
    )


def search_dag(p: Parameters) -> Artifact:
    """`workers` tune tasks share one study; collect picks the best trial."""
    with dsl.ParallelFor(items=p["worker_ids"], parallelism=MAX_WORKERS) as worker_index:
        worker = p.task(tune, worker_index=worker_index)
        with_s3_credentials(with_study_storage(with_retries(worker)))
    best = with_study_storage(p.task(collect, study_names=dsl.Collected(worker.output)))
    return best.outputs["best"]


def keyword(name: str, annotation: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation)


SEARCH_SETTINGS = [
    name
    for name in {**tune.component_spec.inputs, **collect.component_spec.inputs}
    if name in BY_NAME and name != "worker_index"
]
# The parallel step, as a sub-pipeline so that every value reaches the workers as an input of
# the fan-out (kfp.local otherwise hands a task inside ParallelFor the loop item for an upstream
# parameter output).
search = dsl.pipeline(name="stablepipe-search")(
    graph_function(
        "search",
        search_dag,
        [
            keyword("worker_ids", list),
            keyword("study", Input[Artifact]),
            keyword("train", Input[Dataset]),
            keyword("feature_steps", Input[Model]),
            *(keyword(name, BY_NAME[name].kind) for name in SEARCH_SETTINGS),
        ],
        Artifact,
        "The parallel step: `workers` tune tasks share one study; collect picks the best trial.",
        described={
            "worker_ids": "The workers' indices (create_study's output).",
            "study": "The shared study.",
            "train": "The training split.",
            "feature_steps": "Preprocessing + features, cloned into every fold.",
            **{name: BY_NAME[name].help for name in SEARCH_SETTINGS},
        },
    )
)


class TrainingOutputs(NamedTuple):
    dataset: Dataset
    table_schema: Artifact
    quality: Artifact
    quality_report: HTML
    best: Artifact
    model: Model
    report: HTML
    evaluation: Artifact
    test_predictions: Dataset


def training_dag(p: Parameters) -> TrainingOutputs:
    ingested = with_kafka_credentials(
        with_database_credentials(with_s3_credentials(p.task(ingest)))
    )
    dataset = ingested.outputs["dataset"]
    validated = with_s3_credentials(p.task(validate, dataset=dataset))
    table_schema = validated.outputs["table_schema"]
    # The quality check gates training (split runs after it) without being an input of the
    # training steps: a new champion re-runs the check, and the cached training steps stand.
    checked = with_s3_credentials(p.task(check_quality, dataset=dataset, table_schema=table_schema))
    task = validated.outputs["Output"]  # the resolved task
    splits = p.task(split, dataset=dataset, task=task).after(checked)
    training_rows = splits.outputs["train"]
    prep = p.task(preprocess, train=training_rows, table_schema=table_schema)
    feats = p.task(
        features, train=training_rows, preprocessor=prep.outputs["preprocessor"], task=task
    )
    study = with_study_storage(with_retries(p.task(create_study, task=task)))
    searched = p.task(
        search,
        worker_ids=study.outputs["Output"],
        study=study.outputs["study"],
        train=training_rows,
        feature_steps=feats.outputs["feature_steps"],
        task=task,
    )
    trained = p.task(
        train,
        train_split=training_rows,
        feature_steps=feats.outputs["feature_steps"],
        best=searched.output,
        table_schema=table_schema,
    )
    # evaluate and promote read and write the registry, which changes between runs: never cached.
    evaluated = p.task(
        evaluate,
        trained_model=trained.outputs["trained_model"],
        test=splits.outputs["test"],
        study=study.outputs["study"],
        best=searched.output,
    ).set_caching_options(enable_caching=False)
    with_study_storage(with_s3_credentials(evaluated))
    # The served model: the same choice fitted on all rows (train's model beside it, for later
    # runs to compare against). It needs nothing of evaluate, so a cluster runs both at once.
    served = p.task(
        refit,
        trained_model=trained.outputs["trained_model"],
        train_split=training_rows,
        test=splits.outputs["test"],
        feature_steps=feats.outputs["feature_steps"],
        best=searched.output,
        table_schema=table_schema,
    )
    with dsl.If(evaluated.outputs["Output"] == "promote", name="better-than-champion"):
        promoted = p.task(
            promote,
            served_model=served.outputs["served_model"],
            evaluation=evaluated.outputs["evaluation"],
            table_schema=table_schema,
            quality=checked.outputs["quality"],
            job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        ).set_caching_options(enable_caching=False)
        with_s3_credentials(promoted)
    return TrainingOutputs(
        dataset=dataset,
        table_schema=table_schema,
        quality=checked.outputs["quality"],
        quality_report=checked.outputs["quality_report"],
        best=searched.output,
        model=served.outputs["served_model"],
        report=evaluated.outputs["report"],
        evaluation=evaluated.outputs["evaluation"],
        test_predictions=evaluated.outputs["test_predictions"],
    )


training_pipeline = dsl.pipeline(
    name=PIPELINE_NAME,
    description="Ingest, validate, preprocess, search (Optuna, in parallel), train, evaluate, "
    "refit on all rows and promote a scikit-learn model only when it beats the champion.",
)(
    pipeline_function(
        "training_pipeline",
        training_dag,
        TRAINING,
        COMPUTED,
        TrainingOutputs,
        "The stablepipe training pipeline.",
    )
)


def cluster_dag(p: Parameters) -> None:
    """The training pipeline inside an exit handler: the notify step runs however the run
    ended, with its final state."""
    final = notify(
        pipeline_name=PIPELINE_NAME,
        run_id=p["run_id"],
        target=p["target"],
        model_name=p["model_name"],
    )
    kubernetes.use_secret_as_env(final, NOTIFY_SECRET, {"url": "STABLEPIPE_NOTIFY_URL"}, True)
    kubernetes.use_config_map_as_env(
        final, CONFIG_MAP, {"STABLEPIPE_PUSHGATEWAY": "STABLEPIPE_PUSHGATEWAY"}, optional=True
    )
    with dsl.ExitHandler(final, name="run"):
        p.task(training_pipeline)


# What the cluster runs (`stablepipe compile` writes it, `stablepipe submit` submits it): the
# training pipeline in an exit handler. KFP allows no pipeline outputs from inside one, so the
# local runner, which gathers the outputs, runs `training_pipeline` and alerts by itself.
cluster_pipeline = dsl.pipeline(
    name=PIPELINE_NAME,
    description="The stablepipe training pipeline, with a notify step that alerts on failure "
    "and pushes the run's final state to Prometheus.",
)(
    pipeline_function(
        "cluster_pipeline",
        cluster_dag,
        TRAINING,
        COMPUTED,
        None,
        "The stablepipe training pipeline as the cluster runs it: inside an exit handler.",
    )
)
