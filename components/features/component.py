"""KFP component of the features stage."""

from kfp.dsl import Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def features(
    train: Input[Dataset],
    preprocessor: Input[Model],
    target: str,
    task: str,
    features: str,
    pca_variance: float,
    seed: int,
    svd_components: int,
    variance_threshold: float,
    feature_steps: Output[Model],
):
    """Append feature extraction to preprocessing: pass-through, or for wide data a variance
    filter, PCA, truncated SVD or a model-based column selection.

    Args:
        train: The training split (fitting rows).
        preprocessor: The preprocess stage's transformer.
        task: The task validate resolved (select ranks the columns with trees of this task).
        feature_steps: scikit-learn Pipeline [preprocess, features] fitted on train (joblib);
            the search and train clone it, so it is refitted inside every fold.
    """
    import joblib

    from components.common.frames import read_frame
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.features.logic import fit_feature_steps

    settings = settings_in(locals())
    with stage("features", settings) as log:
        steps, facts = fit_feature_steps(
            read_frame(train.path), joblib.load(preprocessor.path), RunConfig(**settings)
        )
        joblib.dump(steps, feature_steps.path)
        feature_steps.metadata.update(facts)
        log.log("built", **facts)
