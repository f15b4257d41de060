"""KFP component of the preprocess stage."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def preprocess(
    train: Input[Dataset],
    schema: Input[Artifact],
    target: str,
    outliers: str,
    scaling: str,
    max_categories: int,
    preprocessor: Output[Model],
):
    """Build the imputing, outlier-clipping, scaling and encoding transformer; fit it on train.

    Args:
        train: The training split; the only rows the transformer is fitted on.
        schema: The validated schema with each column's role.
        target: The column to predict (excluded from the inputs).
        outliers: clip (to Tukey's far-out fences learnt on train) or none.
        scaling: standard, robust or none.
        max_categories: Most one-hot columns per categorical column; rarer values share one.
        preprocessor: The fitted scikit-learn ColumnTransformer (joblib).
    """
    import json

    import joblib

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.preprocess.logic import build_preprocessor

    with stage("preprocess") as log:
        with open(schema.path, encoding="utf-8") as handle:
            table_schema = json.load(handle)
        frame = read_frame(train.path)
        transformer = build_preprocessor(table_schema, outliers, scaling, max_categories)
        transformed = transformer.fit_transform(frame.drop(columns=[target]))
        joblib.dump(transformer, preprocessor.path)
        facts = {
            "rows": len(frame),
            "features_out": int(transformed.shape[1]),
            "missing_values_imputed": int(frame.drop(columns=[target]).isna().sum().sum()),
        }
        preprocessor.metadata.update(facts)
        log.log("fitted", **facts)
