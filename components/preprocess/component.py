"""KFP component of the preprocess stage."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def preprocess(
    train: Input[Dataset],
    table_schema: Input[Artifact],
    target: str,
    outliers: str,
    scaling: str,
    max_categories: int,
    text_vectorizer: str,
    text_word_ngrams: int,
    text_char_ngrams: int,
    text_max_terms: int,
    text_components: int,
    preprocessor: Output[Model],
):
    """Build the imputing, outlier-clipping, scaling and encoding transformer; fit it on train.

    Args:
        train: The training split; the only rows the transformer is fitted on.
        table_schema: The validated schema with each column's role.
        preprocessor: The fitted scikit-learn transformer (joblib).
    """
    import joblib

    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.core.schema import read_table_schema
    from components.preprocess.logic import fit_preprocessing

    settings = settings_in(locals())
    with stage("preprocess", settings) as log:
        schema = read_table_schema(table_schema.path)
        transformer, facts = fit_preprocessing(
            read_frame(train.path), schema, RunConfig(**settings)
        )
        joblib.dump(transformer, preprocessor.path)
        preprocessor.metadata.update(facts)
        log.log("fitted", **facts)
