"""The batch-prediction pipeline: resolve_model + load_rows -> batch_predict.

Scores a table with a stored model (by default the registry's current champion) and publishes
the predictions as a Parquet Dataset, with the columns `stablepipe predict` writes. Its
parameters are the settings of batch prediction (`data`, `model`, the reading settings,
`s3_endpoint`). Compile it with
`kfp.compiler.Compiler().compile(batch_predict_pipeline, "batch.yaml")`.
"""

from kfp import dsl
from kfp.dsl import Dataset

from components.batch_predict import batch_predict
from components.common.settings import BATCH_PREDICT
from components.load_rows import load_rows
from components.resolve_model import resolve_model
from pipelines.parameters import Parameters, pipeline_function
from pipelines.training import with_database_credentials, with_s3_credentials

PIPELINE_NAME = "stablepipe-batch-predict"


def batch_predict_dag(p: Parameters) -> Dataset:
    # Both read state that changes under the same name (a file, the champion pointer): a
    # cached result could be stale, so they always run.
    rows = p.task(load_rows).set_caching_options(enable_caching=False)
    with_database_credentials(with_s3_credentials(rows))
    chosen = p.task(resolve_model).set_caching_options(enable_caching=False)
    with_s3_credentials(chosen)
    scored = batch_predict(
        resolved_model=chosen.outputs["resolved_model"], rows=rows.outputs["rows"]
    )
    return scored.outputs["predictions"]


batch_predict_pipeline = dsl.pipeline(
    name=PIPELINE_NAME,
    description="Score a table with a stored stablepipe model (by default the registry's "
    "champion); the predictions are a Parquet Dataset.",
)(
    pipeline_function(
        "batch_predict_pipeline",
        batch_predict_dag,
        BATCH_PREDICT,
        [],
        Dataset,
        "Score a table with a stored stablepipe model.",
    )
)
