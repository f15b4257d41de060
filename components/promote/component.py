"""KFP component of the promote stage."""

from kfp.dsl import Artifact, Input, Model

from components.common.kfp_component import stage_component


@stage_component
def promote(
    served_model: Input[Model],
    evaluation: Input[Artifact],
    table_schema: Input[Artifact],
    quality: Input[Artifact],
    target: str,
    registry: str,
    model_name: str,
    store: str,
    s3_endpoint: str,
    run_id: str,
    job_id: str,
    data_fingerprint: str,
) -> str:
    """Publish the model as a new registry version and make it the champion.

    Runs only when evaluate's verdict is "promote". The version's files are written first and
    the champion pointer switched last.

    Args:
        served_model: The model folder to publish (refit's: the served model, and train's
            model as judged.skops when it was refitted).
        evaluation: evaluate's JSON (test metrics and verdict), stored beside the model.
        table_schema: validate's schema; stored as schema.yaml, the contract later runs are
            checked against.
        quality: check_quality's verdict; its data profile is stored as data_profile.json, the
            reference later runs measure drift against.
        run_id: The run's id, the new version's name.
        job_id: The Kubeflow run's id (a UUID): the version's name when `run_id` is empty (a
            run started in the UI or by a schedule; the run's display name is not unique).
        data_fingerprint: The data's SHA-256 the runner computed, kept in the champion pointer
            (a retraining trigger compares new data with it).

    Returns:
        The promoted version; "" when another run made a different model the champion after
        this run's evaluation (the comparison no longer holds: nothing is published).
    """
    import json

    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.core.registry import Superseded
    from components.core.schema import read_table_schema
    from components.promote.logic import promote_model

    settings = settings_in(locals())
    with stage("promote", settings) as log:
        with open(evaluation.path, encoding="utf-8") as handle:
            evaluated = json.load(handle)
        with open(quality.path, encoding="utf-8") as handle:
            verdict = json.load(handle)
        try:
            pointer = promote_model(
                served_model.path,
                evaluated,
                read_table_schema(table_schema.path),
                verdict,
                run_id or job_id,
                RunConfig(**settings),
                data_fingerprint,
            )
        except Superseded as superseded:
            log.log("superseded", reason=str(superseded), champion=superseded.champion)
            return ""
        log.log("promoted", **pointer)
        return str(pointer["version"])
