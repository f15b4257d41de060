"""KFP component of the validate stage."""

from kfp.dsl import Artifact, Dataset, Input, Output

from components.common.kfp_component import stage_component


@stage_component
def validate(dataset: Input[Dataset], target: str, task: str, schema: Output[Artifact]) -> str:
    """Check the target suits the task, infer the schema and column roles.

    Args:
        dataset: The ingested table.
        target: The column to predict.
        task: auto, binary, multiclass or regression; auto infers it from the target.
        schema: JSON schema of the table: columns, types, roles, nullability, ranges, categories.

    Returns:
        The resolved task: binary, multiclass or regression.
    """
    import json

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.validate.logic import validate as validate_table

    with stage("validate") as log:
        frame = read_frame(dataset.path)
        inferred = validate_table(frame, target, task)
        with open(schema.path, "w", encoding="utf-8") as handle:
            json.dump(inferred, handle, indent=2)
        roles = [c["role"] for c in inferred["columns"]]
        for column in inferred["columns"]:
            if column["role"] in ("empty", "constant", "id"):
                log.log(
                    "warning", column=column["name"], message=f"{column['role']} column dropped"
                )
        schema.metadata.update({"task": inferred["task"], "rows": inferred["rows"]})
        log.log(
            "validated",
            task=inferred["task"],
            rows=inferred["rows"],
            **{f"{role}_columns": roles.count(role) for role in sorted(set(roles))},
        )
        return str(inferred["task"])
