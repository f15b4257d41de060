"""KFP component of the create_study stage."""

from kfp.dsl import Artifact, Output

from components.common.kfp_component import stage_component


@stage_component
def create_study(task: str, workers: int, study: Output[Artifact]) -> list[int]:
    """Create the shared Optuna study before any search worker starts.

    Args:
        task: binary, multiclass or regression; decides the metric and its direction.
        workers: Number of parallel search workers (1 to 16).
        study: Folder with the study spec and, locally, its journal file.

    Returns:
        The worker indices, one per worker (the items of the search's ParallelFor).
    """
    import uuid

    from components.common.config import MAX_WORKERS
    from components.common.errors import BadInputError
    from components.common.stage import stage
    from components.core.metrics import cv_metric
    from components.core.study import create_study as make_study

    with stage("create_study") as log:
        if not 1 <= workers <= MAX_WORKERS:
            raise BadInputError(f"--workers must be between 1 and {MAX_WORKERS}; got {workers!r}")
        spec = make_study(study.path, f"stablepipe-{uuid.uuid4().hex[:12]}", cv_metric(task))
        study.metadata.update(spec)
        log.log("created", workers=workers, **spec)
        return list(range(workers))
