"""KFP component of the validate stage (task, schema, roles). It is a step of its own, apart
from check_quality, so that a new champion, which changes the quality reference, re-runs only
the check: the training steps depend on the schema alone and stay cached."""

from kfp.dsl import Artifact, Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def validate(
    dataset: Input[Dataset],
    target: str,
    task: str,
    schema: str,
    s3_endpoint: str,
    roles: str,
    time_column: str,
    series_key: str,
    known_ahead: str,
    horizon: int,
    season: int,
    schema_version: str,
    table_schema: Output[Artifact],
) -> str:
    """Check the target suits the task; infer the schema and column roles.

    Args:
        dataset: The ingested table.
        schema_version: A digest of the schema file's content, computed by the runner (part
            of the cache key, so an edited file is never served from the cache); not read.
        table_schema: JSON schema of the table: columns, types, roles, nullability, ranges,
            categories (and a forecast's time-series setup).

    Returns:
        The resolved task: binary, multiclass or regression.
    """
    import json

    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.validate.logic import validate_data

    settings = settings_in(locals())
    with stage("validate", settings) as log:
        inferred = validate_data(read_frame(dataset.path), RunConfig(**settings))
        with open(table_schema.path, "w", encoding="utf-8") as handle:
            json.dump(inferred, handle, indent=2)
        found = [c["role"] for c in inferred["columns"]]
        table_schema.metadata.update({"task": inferred["task"], "rows": inferred["rows"]})
        log.log(
            "validated",
            task=inferred["task"],
            rows=inferred["rows"],
            **{f"{role}_columns": found.count(role) for role in sorted(set(found))},
        )
        return str(inferred["task"])
