"""KFP component of the train stage."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def train(
    train_split: Input[Dataset],
    feature_steps: Input[Model],
    best: Input[Artifact],
    table_schema: Input[Artifact],
    seed: int,
    trained_model: Output[Model],
):
    """Fit the best configuration on the whole training split (the model evaluate scores).

    Args:
        train_split: The training split.
        feature_steps: Preprocessing + features (cloned, then fitted here).
        best: The best configuration found by the search.
        table_schema: The validated schema (target, task, input columns).
        trained_model: Folder with the fitted Pipeline (model.skops) and its card (model.json).
    """
    import json

    import joblib

    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.core.model_file import save_model
    from components.core.schema import read_table_schema
    from components.train.logic import train_model

    settings = settings_in(locals())
    with stage("train", settings) as log:
        with open(best.path, encoding="utf-8") as handle:
            best_config = json.load(handle)
        schema = read_table_schema(table_schema.path)
        fitted, card = train_model(
            read_frame(train_split.path),
            joblib.load(feature_steps.path),
            best_config,
            schema,
            RunConfig(**settings),
        )
        save_model(trained_model.path, fitted, card)
        trained_model.metadata.update({"family": best_config["model"], "task": card["task"]})
        log.log("trained", model=best_config["model"], rows=card["training_rows"])
