"""KFP component of the collect stage: the best trial of the finished search."""

from kfp.dsl import Artifact, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def collect(
    study: Input[Artifact],
    study_names: list[str],
    ensemble: bool,
    refit: bool,
    test_size: float,
    best: Output[Artifact],
):
    """Pick the best complete trial of the shared study once every worker has finished.

    Args:
        study: The shared study's storage.
        study_names: The study each worker searched in (collected from the ParallelFor); one
            name unless a resumed run mixes cached and re-run workers.
        best: JSON with the best model family, its parameters, CV score and spread.
    """
    import json

    from components.collect.logic import collect_best
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage

    settings = settings_in(locals())
    with stage("collect", settings) as log:
        config = collect_best(study.path, study_names, RunConfig(**settings))
        with open(best.path, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        best.metadata.update({"model": config["model"], "cv_score": config["cv_score"]})
        log.log(
            "best",
            model=config["model"],
            cv_score=config["cv_score"],
            cv_std=config["cv_std"],
            ensemble=len(config["ensemble"]["members"]) if config["ensemble"] else 0,
            **config["trials"],
        )
