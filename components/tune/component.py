"""KFP components of the tune stage: one search worker, and the step that collects the best."""

from kfp.dsl import Artifact, Dataset, Input, Model

from components.common.kfp_component import stage_component


@stage_component
def tune(
    study: Input[Artifact],
    train: Input[Dataset],
    feature_steps: Input[Model],
    target: str,
    task: str,
    trials: int,
    time_budget: float,
    cv_folds: int,
    seed: int,
    worker_index: int,
    workers: int,
    registry: str = "",
    s3_endpoint: str = "",
) -> str:
    """One search worker: runs trials of the shared study until it holds `trials` trials.

    Args:
        study: The study made by create_study (shared by every worker).
        train: The training split; trials are scored by cross-validation on it.
        feature_steps: Preprocessing + features, cloned into every fold.
        target: The column to predict.
        task: binary, multiclass or regression.
        trials: Total number of trials of the whole search (all workers together).
        time_budget: Wall-clock seconds after which a worker starts no new trial.
        cv_folds: Number of cross-validation folds (2 to 10).
        seed: Base random seed; worker i samples with seed + i.
        worker_index: This worker's index (the ParallelFor item).
        workers: How many workers search at once; each caps its native threads to its share
            of the node's cores.
        registry: The model registry; when it has a champion for this target and task, the
            champion's configuration is the study's first trial (warm start). Empty = none.
        s3_endpoint: The S3 endpoint when the registry is on S3.

    Returns:
        The name of the study the worker searched in (see create_study's attempt_study).
    """
    import joblib

    from components.common.errors import BadInputError
    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.core.registry import champion_configuration
    from components.core.study import attempt_study
    from components.core.transformers.timeseries import model_inputs
    from components.tune.logic import SearchData, run_worker, warm_start

    with stage("tune") as log:
        if not 2 <= cv_folds <= 10:
            raise BadInputError(f"cv_folds must be between 2 and 10; got {cv_folds!r}")
        frame = read_frame(train.path)
        steps = joblib.load(feature_steps.path)
        data = SearchData(
            X=model_inputs(frame, target, steps),
            y=frame[target],
            feature_steps=steps,
            task=task,
            folds=cv_folds,
            seed=seed,
        )
        searched = attempt_study(study.path)
        champion = champion_configuration(registry, s3_endpoint, target, task) if registry else None
        warmed = warm_start(searched, champion, len(frame))
        outcome = run_worker(searched, data, trials, time_budget, worker_index, workers)
        log.log("searched", study=searched.study_name, warm_start=warmed, **outcome)
        return searched.study_name
