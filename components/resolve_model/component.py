"""KFP component of the resolve_model stage (batch prediction): a stored model as an artifact."""

from kfp.dsl import Model, Output

from components.common.kfp_component import stage_component


@stage_component
def resolve_model(model: str, s3_endpoint: str, resolved_model: Output[Model]):
    """Copy a stored model into a Model artifact, after checking that it loads.

    Args:
        resolved_model: The model folder (model.skops and model.json); metadata has the
            registry version (empty for a run's folder), task and target.
    """
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.resolve_model.logic import resolve_stored_model

    settings = settings_in(locals())
    with stage("resolve_model", settings) as log:
        facts = resolve_stored_model(resolved_model.path, RunConfig(**settings))
        resolved_model.metadata.update(facts)
        log.log("resolved", **facts)
