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
    task: str = "auto",
    svd_components: int = 100,
    variance_threshold: float = 0.0,
):
    """Append feature extraction to preprocessing: pass-through, or for wide data a variance
    filter, PCA, truncated SVD or a model-based column selection.

    Args:
        train: The training split (fitting rows).
        preprocessor: The preprocess stage's transformer.
        target: The column to predict (excluded from the inputs).
        method: none (pass-through), variance, pca, svd or select.
        pca_variance: With pca, the share of variance the kept components explain.
        seed: Random seed of PCA, SVD and the selecting trees.
        feature_steps: scikit-learn Pipeline [preprocess, features] fitted on train (joblib);
            the search and train clone it, so it is refitted inside every fold.
        task: binary, multiclass or regression (the validate stage's), or auto to infer it
            from the target; select ranks the columns with trees of this task.
        svd_components: With svd, the most dimensions kept.
        variance_threshold: With variance, columns whose training variance is at most this
            are dropped (0: the constant ones).
    """
    import joblib

    from components.common.frames import read_frame
    from components.common.stage import stage
    from components.core.transformers.timeseries import model_inputs
    from components.features.logic import build_features, feature_pipeline, fit_features

    with stage("features") as log:
        frame = read_frame(train.path)
        chosen = build_features(
            method,
            pca_variance,
            seed,
            task=task,
            svd_components=svd_components,
            variance_threshold=variance_threshold,
        )
        steps = feature_pipeline(joblib.load(preprocessor.path), chosen)
        out = fit_features(steps, model_inputs(frame, target, steps), frame[target])
        joblib.dump(steps, feature_steps.path)
        facts = {"method": method, "features_out": int(out.shape[1])}
        if method != "none":  # the width it reduced, for the record
            facts["features_in"] = int(steps.named_steps["features"].n_features_in_)
        feature_steps.metadata.update(facts)
        log.log("built", **facts)
