"""KFP components of batch prediction: pick a stored model, read the rows, score them."""

from kfp.dsl import Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def batch_predict(model: Input[Model], data: Input[Dataset], predictions: Output[Dataset]):
    """Score every row of a table with the model.

    Args:
        model: A model folder (from train or resolve_model).
        data: The rows to score (Parquet); it needs the model's input columns, others are
            ignored.
        predictions: Parquet, one row per input row in the same order: `prediction` and, for
            classification, `proba_<class>` per class (the columns `stablepipe predict` writes).
    """
    from components.common.frames import read_frame, write_frame
    from components.common.stage import stage
    from components.core.model_file import load_model
    from components.core.scoring import score_rows

    with stage("batch_predict") as log:
        scored = score_rows(load_model(model.path), read_frame(data.path), "data")
        write_frame(scored, predictions.path)
        facts = {"rows": len(scored), "model_version": str(model.metadata.get("version", ""))}
        predictions.metadata.update(facts)
        log.log("predicted", **facts)
