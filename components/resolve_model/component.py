"""KFP component of the resolve_model stage (batch prediction): a stored model as an artifact."""

from kfp.dsl import Model, Output

from components.common.kfp_component import stage_component


@stage_component
def resolve_model(location: str, s3_endpoint: str, model: Output[Model]):
    """Copy a stored model into a Model artifact, after checking that it loads.

    Args:
        location: A run's model folder (runs/<run_id>/model), `<registry>/<name>/champion` for
            the registry's current champion, or the same on S3 (s3://bucket/prefix/...).
        s3_endpoint: The S3 endpoint when the location is on S3 (credentials come from the
            environment, on Kubernetes from a Secret).
        model: The model folder (model.skops and model.json); metadata has the registry version
            (empty for a run's folder), task and target.
    """
    from components.common.stage import stage
    from components.core.registry import download_model

    with stage("resolve_model") as log:
        loaded = download_model(location, model.path, s3_endpoint)
        facts = {
            "location": location,
            "version": loaded.version or "",
            "task": loaded.card["task"],
            "target": loaded.card["target"],
        }
        model.metadata.update(facts)
        log.log("resolved", **facts)
