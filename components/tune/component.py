"""KFP component of the tune stage: one search worker of the shared study."""

from kfp.dsl import Artifact, Dataset, Input, Model

from components.common.kfp_component import stage_component


@stage_component
def tune(
    study: Input[Artifact],
    train: Input[Dataset],
    feature_steps: Input[Model],
    worker_index: int,
    target: str,
    task: str,
    trials: int,
    time_budget: float,
    cv_folds: int,
    seed: int,
    workers: int,
    registry: str,
    model_name: str,
    store: str,
    s3_endpoint: str,
) -> str:
    """One search worker: runs trials of the shared study until the time budget is spent (one
    deadline for every worker) or the study holds `trials` trials (0: no cap).

    Args:
        study: The study made by create_study (shared by every worker).
        train: The training split; trials are scored by cross-validation on it.
        feature_steps: Preprocessing + features, cloned into every fold.
        worker_index: This worker's index (the ParallelFor item); it samples with seed + index
            and caps its native threads to its share of the node's cores.
        task: The task validate resolved.

    Returns:
        The name of the study the worker searched in (see components/core/study.py
        attempt_study).
    """
    import joblib

    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.tune.logic import tune_worker

    settings = settings_in(locals())
    with stage("tune", settings) as log:
        study_name, facts = tune_worker(
            study.path,
            read_frame(train.path),
            joblib.load(feature_steps.path),
            worker_index,
            RunConfig(**settings),
        )
        log.log("searched", study=study_name, **facts)
        return study_name
