"""KFP component of the refit stage."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def refit(
    trained_model: Input[Model],
    train_split: Input[Dataset],
    test: Input[Dataset],
    feature_steps: Input[Model],
    best: Input[Artifact],
    table_schema: Input[Artifact],
    seed: int,
    refit: bool,
    served_model: Output[Model],
):
    """Fit the chosen configuration again on all rows, as the model the run serves.

    Args:
        trained_model: train's model, the one evaluate scores: kept beside the refit as
            judged.skops, what later runs compare against.
        train_split: The training split.
        test: The test split.
        feature_steps: Preprocessing + features (cloned, then fitted here).
        best: The best configuration found by the search.
        table_schema: The validated schema (target, task, input columns).
        served_model: The model folder the run keeps and promote publishes: the refit's
            model.skops, its card and judged.skops; with refit off, train's folder as it is.
    """
    import json
    from pathlib import Path

    import joblib

    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.core.model_file import MODEL_FILE, copy_model, save_model
    from components.core.schema import read_table_schema
    from components.refit.logic import refit_model

    settings = settings_in(locals())
    with stage("refit", settings) as log:
        with open(best.path, encoding="utf-8") as handle:
            best_config = json.load(handle)
        refitted = refit_model(
            read_frame(train_split.path),
            read_frame(test.path),
            joblib.load(feature_steps.path),
            best_config,
            read_table_schema(table_schema.path),
            RunConfig(**settings),
        )
        if refitted is None:
            copy_model(trained_model.path, served_model.path)
            served_model.metadata.update(trained_model.metadata)
            log.log("kept", reason="--no-refit: serving the model evaluate scored")
            return
        fitted, card = refitted
        save_model(served_model.path, fitted, card, judged=Path(trained_model.path) / MODEL_FILE)
        served_model.metadata.update({"family": best_config["model"], "task": card["task"]})
        log.log("refitted", model=best_config["model"], rows=card["training_rows"])
