"""KFP component of the promote stage."""

from kfp.dsl import Artifact, Input, Model

from components.common.kfp_component import stage_component


@stage_component
def promote(
    model: Input[Model],
    evaluation: Input[Artifact],
    schema: Input[Artifact],
    quality: Input[Artifact],
    registry: str,
    s3_endpoint: str,
    version: str,
) -> str:
    """Publish the model as a new registry version and make it the champion.

    Runs only when evaluate's verdict is "promote". The version's files are written first and
    the champion pointer switched last.

    Args:
        model: The trained model folder.
        evaluation: evaluate's JSON (test metrics and verdict), stored beside the model.
        schema: validate's schema; stored as schema.yaml, the contract later runs are checked
            against.
        quality: validate's verdict; its data profile is stored as data_profile.json, the
            reference later runs measure drift against.
        registry: The model registry: a folder or s3://bucket/prefix/models/<name>.
        s3_endpoint: The S3 endpoint when the registry is on S3.
        version: The new version's name (the run id).

    Returns:
        The promoted version.
    """
    import json

    from components.common.stage import stage
    from components.core.registry import promote as publish
    from components.core.schema import dump_schema

    with stage("promote") as log:
        with open(evaluation.path, encoding="utf-8") as handle:
            evaluated = json.load(handle)
        evaluated["run_id"] = version
        with open(schema.path, encoding="utf-8") as handle:
            schema_yaml = dump_schema(json.load(handle))
        with open(quality.path, encoding="utf-8") as handle:
            profile = json.load(handle)["profile"]
        attachments = {
            "schema.yaml": schema_yaml.encode(),
            "data_profile.json": json.dumps(profile, indent=1).encode(),
        }
        pointer = publish(registry, model.path, version, evaluated, s3_endpoint, attachments)
        log.log("promoted", **pointer)
        return str(pointer["version"])
