"""KFP component of the create_study stage."""

from kfp.dsl import Artifact, Output

from components.common.kfp_component import stage_component


@stage_component
def create_study(task: str, workers: int, study: Output[Artifact]) -> list[int]:
    """Create the shared Optuna study before any search worker starts.

    Args:
        task: The task validate resolved; decides the metric and its direction.
        study: Folder with the study spec and, locally, its journal file.

    Returns:
        The worker indices, one per worker (the items of the search's ParallelFor).
    """
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.create_study.logic import create_search_study

    settings = settings_in(locals())
    with stage("create_study", settings) as log:
        spec, worker_ids = create_search_study(study.path, RunConfig(**settings))
        study.metadata.update(spec)
        log.log("created", workers=workers, **spec)
        return worker_ids
