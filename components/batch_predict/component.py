"""KFP component of the batch_predict stage: score the rows with the model."""

from kfp.dsl import Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def batch_predict(resolved_model: Input[Model], rows: Input[Dataset], predictions: Output[Dataset]):
    """Score every row of a table with the model.

    Args:
        resolved_model: A model folder (from train or resolve_model).
        rows: The rows to score (Parquet); it needs the model's input columns, others are
            ignored.
        predictions: Parquet, one row per input row in the same order: `prediction` and, for
            classification, `proba_<class>` per class (the columns `stablepipe predict` writes).
    """
    from components.batch_predict.logic import predict_batch
    from components.common.frames import read_frame, write_frame
    from components.common.stage import stage

    with stage("batch_predict") as log:
        scored = predict_batch(resolved_model.path, read_frame(rows.path))
        write_frame(scored, predictions.path)
        facts = {
            "rows": len(scored),
            "model_version": str(resolved_model.metadata.get("version", "")),
        }
        predictions.metadata.update(facts)
        log.log("predicted", **facts)
