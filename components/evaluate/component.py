"""KFP component of the evaluate stage."""

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def evaluate(
    model: Input[Model],
    test: Input[Dataset],
    study: Input[Artifact],
    best: Input[Artifact],
    registry: str,
    s3_endpoint: str,
    min_improvement: float,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
    test_predictions: Output[Dataset],
    confidence: float = 0.95,
) -> str:
    """Score the model on the held-out test split and judge it against the champion.

    Args:
        model: The trained model folder.
        test: The held-out test split.
        study: The search's study (for the search history in the report).
        best: The best configuration and its cross-validation score.
        registry: The model registry holding the champion (may not exist yet): a folder or
            s3://bucket/prefix/models/<name>.
        s3_endpoint: The S3 endpoint when the registry is on S3 (credentials come from the
            environment, on Kubernetes from a Secret).
        min_improvement: How much better than the champion's primary metric, on this test
            split, the model must be to be promoted.
        confidence: The level of the paired-bootstrap interval of the gain (0.5 to 0.999);
            the model is promoted only when the interval lies above zero.
        metrics: Test metrics (roc_auc, accuracy, f1_macro, log_loss or rmse, mae, r2).
        classification_metrics: Confusion matrix and (binary) ROC curve.
        report: The HTML report with plots.
        evaluation: JSON with the test metrics and the promotion verdict.
        test_predictions: The model's predictions for the test split's rows, in their order
            (Parquet, the columns `stablepipe predict` writes): what serving the model gives.

    Returns:
        "promote" or "keep": the verdict promotion is gated on.
    """
    import json

    from components.common.frames import read_frame, write_frame
    from components.common.stage import stage
    from components.core.model_file import load_model
    from components.core.registry import load_champion
    from components.core.scoring import score_rows
    from components.core.study import load_study
    from components.evaluate.logic import evaluate_run

    with stage("evaluate") as log:
        with open(best.path, encoding="utf-8") as handle:
            best_config = json.load(handle)
        studies = [load_study(study.path, name) for name in best_config["studies"]]
        test_split = read_frame(test.path)
        result = evaluate_run(
            model.path,
            test_split,
            studies,
            best_config,
            load_champion(registry, s3_endpoint),
            min_improvement,
            confidence,
        )
        for name, value in result.metrics.items():
            metrics.log_metric(name, value)
        if result.confusion_matrix is not None:
            classification_metrics.log_confusion_matrix(result.classes, result.confusion_matrix)
        if result.roc is not None:
            classification_metrics.log_roc_curve(
                result.roc["fpr"], result.roc["tpr"], result.roc["thresholds"]
            )
        with open(report.path, "w", encoding="utf-8") as handle:
            handle.write(result.report_html)
        with open(evaluation.path, "w", encoding="utf-8") as handle:
            json.dump(result.as_dict(), handle, indent=2)
        # through the serving path (the model file loaded again, as predict loads it)
        write_frame(score_rows(load_model(model.path), test_split, "test"), test_predictions.path)
        log.log("evaluated", decision=result.verdict.decision, **result.metrics)
        return result.verdict.decision
