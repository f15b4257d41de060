"""KFP component of the features stage."""

from kfp.dsl import Dataset, Input, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def features(
    train: Input[Dataset],
    preprocessor: Input[Model],
    target: str,
    method: str,
    pca_variance: float,
    seed: int,
    feature_steps: Output[Model],
):
    """Append feature extraction to preprocessing: pass-through, or PCA when asked.

    Args:
        train: The training split (fitting rows).
        preprocessor: The preprocess stage's transformer.
        target: The column to predict (excluded from the inputs).
        method: none (pass-through) or pca.
        pca_variance: With pca, the share of variance the kept components explain.
        seed: Random seed of PCA.
        feature_steps: scikit-learn Pipeline [preprocess, features] fitted on train (joblib);
            the search and train clone it, so it is refitted inside every fold.
    """
    import joblib

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.features.logic import build_features, feature_pipeline

    with stage("features") as log:
        frame = read_frame(train.path)
        steps = feature_pipeline(
            joblib.load(preprocessor.path), build_features(method, pca_variance, seed)
        )
        out = steps.fit_transform(frame.drop(columns=[target]))
        joblib.dump(steps, feature_steps.path)
        feature_steps.metadata.update({"method": method, "features_out": int(out.shape[1])})
        log.log("built", method=method, features_out=int(out.shape[1]))
