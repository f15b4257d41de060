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
    text_vectorizer: str = "tfidf",
    text_word_ngrams: int = 2,
    text_char_ngrams: int = 5,
    text_max_terms: int = 20000,
    text_components: int = 100,
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
        text_vectorizer: Text columns' terms: tfidf (a vocabulary) or hashing (none kept).
        text_word_ngrams: Longest word n-gram of text columns (0: no word n-grams).
        text_char_ngrams: Longest character n-gram of text columns, from 2 (0: none).
        text_max_terms: Term columns per kind of n-gram (the vocabulary's or the hash's size).
        text_components: Dimensions text is reduced to by SVD for non-linear models (linear
            models take the sparse terms).
    """
    import json

    import joblib

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.core.transformers.timeseries import model_inputs, with_forecasting
    from components.preprocess.logic import build_preprocessor

    with stage("preprocess") as log:
        with open(schema.path, encoding="utf-8") as handle:
            table_schema = json.load(handle)
        frame = read_frame(train.path)
        columns = build_preprocessor(
            table_schema,
            outliers,
            scaling,
            max_categories,
            text_vectorizer=text_vectorizer,
            text_word_ngrams=text_word_ngrams,
            text_char_ngrams=text_char_ngrams,
            text_max_terms=text_max_terms,
            text_components=text_components,
        )
        transformer = with_forecasting(table_schema, columns)
        transformed = transformer.fit_transform(
            model_inputs(frame, target, transformer), frame[target]
        )
        joblib.dump(transformer, preprocessor.path)
        facts = {
            "rows": len(frame),
            "features_out": int(transformed.shape[1]),
            "missing_values_imputed": int(frame.drop(columns=[target]).isna().sum().sum()),
        }
        preprocessor.metadata.update(facts)
        log.log("fitted", **facts)
