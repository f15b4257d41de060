"""KFP components of batch prediction: pick a stored model, read the rows, score them."""

from kfp.dsl import Dataset, Input, Model, Output

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
    from components.promote.logic import download_model

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


@stage_component
def load_rows(source: str, s3_endpoint: str, rows: Output[Dataset], decimal: str = "."):
    """Read the rows to score, as `stablepipe predict --data` reads them.

    Args:
        source: A local file (CSV/TSV/Parquet/JSON/JSON Lines/Excel) or folder of them, an
            s3://bucket/key object or prefix, or a database URL.
        s3_endpoint: The S3 endpoint for s3:// sources; credentials come from the environment.
        rows: The rows as Parquet; metadata has source, rows and columns.
        decimal: The decimal mark of CSV/TSV numbers, . or , (as the training data was read).
    """
    from components.common.frames import write_frame
    from components.common.stage import stage
    from components.ingest.logic import ReadOptions, read_table

    with stage("load_rows") as log:
        frame = read_table(source, s3_endpoint, ReadOptions(decimal=decimal))
        write_frame(frame, rows.path)
        facts = {"source": source, "rows": len(frame), "columns": len(frame.columns)}
        rows.metadata.update(facts)
        log.log("read", **facts)


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
    from components.predict.logic import score_rows
    from components.train.model_io import load_model

    with stage("batch_predict") as log:
        scored = score_rows(load_model(model.path), read_frame(data.path), "data")
        write_frame(scored, predictions.path)
        facts = {"rows": len(scored), "model_version": str(model.metadata.get("version", ""))}
        predictions.metadata.update(facts)
        log.log("predicted", **facts)
