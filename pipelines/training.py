"""The training pipeline: ingest -> validate -> check_quality -> split -> preprocess -> features ->
create_study -> tune (ParallelFor workers sharing one study) -> collect -> train -> evaluate ->
promote (dsl.If).
"""

from typing import NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import HTML, Artifact, Dataset, Input, Model

from components.check_quality import check_quality
from components.collect import collect
from components.common.config import MAX_WORKERS
from components.create_study import create_study
from components.evaluate import evaluate
from components.features import features
from components.ingest import ingest
from components.preprocess import preprocess
from components.promote import promote
from components.split import split
from components.train import train
from components.tune import tune
from components.validate import validate

PIPELINE_NAME = "stablepipe-training"
# Kubernetes Secrets the steps read credentials from (never pipeline parameters). Both are
# optional: without them a step runs with what its environment has (as under kfp.local,
# which ignores kfp.kubernetes settings).
S3_SECRET = "stablepipe-s3"  # keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
STUDY_SECRET = "stablepipe-optuna"  # key url: the SQLAlchemy URL of the shared study database
DATABASE_SECRET = "stablepipe-database"  # keys user, password: the source database's login


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


def with_retries(task: dsl.PipelineTask, attempts: int = 2) -> dsl.PipelineTask:
    """Retry a step that can fail transiently (a pod evicted, a storage lock timing out)."""
    return task.set_retry(
        num_retries=attempts, backoff_duration="5s", backoff_factor=2.0, backoff_max_duration="60s"
    )


@dsl.pipeline(name="stablepipe-search")
def search(
    worker_ids: list[int],
    study: Input[Artifact],
    train_split: Input[Dataset],
    feature_steps: Input[Model],
    target: str,
    task: str,
    trials: int,
    time_budget: float,
    cv_folds: int,
    seed: int,
    workers: int,
    registry: str,
    s3_endpoint: str,
) -> Artifact:
    """The parallel step: `workers` tune tasks share one study; collect picks the best trial.

    A sub-pipeline so that every value reaches the workers as an input of the fan-out (kfp.local
    otherwise hands a task inside ParallelFor the loop item for an upstream parameter output).
    """
    with dsl.ParallelFor(items=worker_ids, parallelism=MAX_WORKERS) as worker_index:
        worker = tune(
            study=study,
            train=train_split,
            feature_steps=feature_steps,
            target=target,
            task=task,
            trials=trials,
            time_budget=time_budget,
            cv_folds=cv_folds,
            seed=seed,
            worker_index=worker_index,
            workers=workers,
            registry=registry,
            s3_endpoint=s3_endpoint,
        )
        with_s3_credentials(with_study_storage(with_retries(worker)))
    best = with_study_storage(collect(study=study, study_names=dsl.Collected(worker.output)))
    return best.outputs["best"]


class TrainingOutputs(NamedTuple):
    dataset: Dataset
    schema: Artifact
    quality: Artifact
    quality_report: HTML
    best: Artifact
    model: Model
    report: HTML
    evaluation: Artifact
    test_predictions: Dataset


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Ingest, validate, preprocess, search (Optuna, in parallel), train, evaluate and "
    "promote a scikit-learn model only when it beats the champion.",
)
def training_pipeline(
    source: str = "demo:breast_cancer",
    target: str = "target",
    task: str = "auto",
    data_fingerprint: str = "",
    table: str = "",
    query: str = "",
    delimiter: str = "",
    encoding: str = "",
    header: str = "auto",
    sheet: str = "",
    decimal: str = ".",
    files: list = [],  # noqa: B006 (KFP reads the default; it is never mutated)
    stream_above_mb: float = 256.0,
    schema_file: str = "",
    schema_version: str = "",
    fail_on: str = "error",
    reference_version: str = "",
    test_size: float = 0.2,
    seed: int = 42,
    outliers: str = "clip",
    scaling: str = "standard",
    max_categories: int = 20,
    feature_method: str = "none",
    pca_variance: float = 0.95,
    svd_components: int = 100,
    variance_threshold: float = 0.0,
    text_vectorizer: str = "tfidf",
    text_word_ngrams: int = 2,
    text_char_ngrams: int = 5,
    text_max_terms: int = 20000,
    text_components: int = 100,
    trials: int = 30,
    workers: int = 2,
    time_budget: float = 600.0,
    cv_folds: int = 5,
    registry: str = "models/target",
    s3_endpoint: str = "http://minio-service.kubeflow:9000",
    min_improvement: float = 0.0,
    confidence: float = 0.95,
    roles: str = "",
    time_column: str = "",
    series_columns: str = "",
    horizon: int = 1,
    season: int = 0,
    run_id: str = "manual",
) -> TrainingOutputs:
    ingested = with_s3_credentials(
        ingest(
            source=source,
            target=target,
            data_fingerprint=data_fingerprint,
            s3_endpoint=s3_endpoint,
            table=table,
            query=query,
            delimiter=delimiter,
            encoding=encoding,
            header=header,
            sheet=sheet,
            decimal=decimal,
            files=files,
            stream_above_mb=stream_above_mb,
        )
    )
    with_database_credentials(ingested)
    validated = with_s3_credentials(
        validate(
            dataset=ingested.outputs["dataset"],
            target=target,
            task=task,
            schema_file=schema_file,
            schema_version=schema_version,
            s3_endpoint=s3_endpoint,
            roles=roles,
            time_column=time_column,
            series_columns=series_columns,
            horizon=horizon,
            season=season,
        )
    )
    # The quality check gates training (split runs after it) without being an input of the
    # training steps: a new champion re-runs the check, and the cached training steps stand.
    checked = with_s3_credentials(
        check_quality(
            dataset=ingested.outputs["dataset"],
            schema=validated.outputs["schema"],
            schema_file=schema_file,
            registry=registry,
            s3_endpoint=s3_endpoint,
            fail_on=fail_on,
            reference_version=reference_version,
        )
    )
    resolved_task = validated.outputs["Output"]
    splits = split(
        dataset=ingested.outputs["dataset"],
        target=target,
        task=resolved_task,
        test_size=test_size,
        time_column=time_column,
    ).after(checked)
    prep = preprocess(
        train=splits.outputs["train"],
        schema=validated.outputs["schema"],
        target=target,
        outliers=outliers,
        scaling=scaling,
        max_categories=max_categories,
        text_vectorizer=text_vectorizer,
        text_word_ngrams=text_word_ngrams,
        text_char_ngrams=text_char_ngrams,
        text_max_terms=text_max_terms,
        text_components=text_components,
    )
    feats = features(
        train=splits.outputs["train"],
        preprocessor=prep.outputs["preprocessor"],
        target=target,
        method=feature_method,
        pca_variance=pca_variance,
        seed=seed,
        task=resolved_task,
        svd_components=svd_components,
        variance_threshold=variance_threshold,
    )
    study = with_study_storage(with_retries(create_study(task=resolved_task, workers=workers)))
    searched = search(
        worker_ids=study.outputs["Output"],
        study=study.outputs["study"],
        train_split=splits.outputs["train"],
        feature_steps=feats.outputs["feature_steps"],
        target=target,
        task=resolved_task,
        trials=trials,
        time_budget=time_budget,
        cv_folds=cv_folds,
        seed=seed,
        workers=workers,
        registry=registry,
        s3_endpoint=s3_endpoint,
    )
    trained = train(
        train_split=splits.outputs["train"],
        feature_steps=feats.outputs["feature_steps"],
        best=searched.output,
        schema=validated.outputs["schema"],
        seed=seed,
    )
    # evaluate and promote read and write the registry, which changes between runs: never cached.
    evaluated = evaluate(
        model=trained.outputs["model"],
        test=splits.outputs["test"],
        study=study.outputs["study"],
        best=searched.output,
        registry=registry,
        s3_endpoint=s3_endpoint,
        min_improvement=min_improvement,
        confidence=confidence,
    ).set_caching_options(enable_caching=False)
    with_study_storage(with_s3_credentials(evaluated))
    with dsl.If(evaluated.outputs["Output"] == "promote", name="better-than-champion"):
        promoted = promote(
            model=trained.outputs["model"],
            evaluation=evaluated.outputs["evaluation"],
            schema=validated.outputs["schema"],
            quality=checked.outputs["quality"],
            registry=registry,
            s3_endpoint=s3_endpoint,
            version=run_id,
        ).set_caching_options(enable_caching=False)
        with_s3_credentials(promoted)
    return TrainingOutputs(
        dataset=ingested.outputs["dataset"],
        schema=validated.outputs["schema"],
        quality=checked.outputs["quality"],
        quality_report=checked.outputs["quality_report"],
        best=searched.output,
        model=trained.outputs["model"],
        report=evaluated.outputs["report"],
        evaluation=evaluated.outputs["evaluation"],
        test_predictions=evaluated.outputs["test_predictions"],
    )
