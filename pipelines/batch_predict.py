"""The batch-prediction pipeline: resolve_model + load_rows -> batch_predict.

Scores a table with a stored model (by default the registry's current champion) and publishes
the predictions as a Parquet Dataset, with the columns `stablepipe predict` writes.
Compile it with `kfp.compiler.Compiler().compile(batch_predict_pipeline, "batch.yaml")`.
"""

from kfp import dsl
from kfp.dsl import Dataset

from components.batch_predict import batch_predict
from components.load_rows import load_rows
from components.resolve_model import resolve_model
from pipelines.training import with_database_credentials, with_s3_credentials

PIPELINE_NAME = "stablepipe-batch-predict"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Score a table with a stored stablepipe model (by default the registry's "
    "champion); the predictions are a Parquet Dataset.",
)
def batch_predict_pipeline(
    source: str,
    model: str = "models/target/champion",
    s3_endpoint: str = "http://minio-service.kubeflow:9000",
    decimal: str = ".",
) -> Dataset:
    # Both read state that changes under the same name (a file, the champion pointer): a
    # cached result could be stale, so they always run.
    rows = load_rows(source=source, s3_endpoint=s3_endpoint, decimal=decimal).set_caching_options(
        enable_caching=False
    )
    with_database_credentials(with_s3_credentials(rows))
    chosen = resolve_model(location=model, s3_endpoint=s3_endpoint).set_caching_options(
        enable_caching=False
    )
    with_s3_credentials(chosen)
    scored = batch_predict(model=chosen.outputs["model"], data=rows.outputs["rows"])
    return scored.outputs["predictions"]
