"""KFP component of the evaluate stage."""

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.common.kfp_component import stage_component


@stage_component
def evaluate(
    trained_model: Input[Model],
    test: Input[Dataset],
    study: Input[Artifact],
    best: Input[Artifact],
    target: str,
    registry: str,
    model_name: str,
    store: str,
    s3_endpoint: str,
    metric: str,
    min_improvement: float,
    confidence: float,
    refit: bool,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    evaluation: Output[Artifact],
    test_predictions: Output[Dataset],
) -> str:
    """Score the model on the held-out test split and judge it against the champion.

    Args:
        trained_model: The trained model folder.
        test: The held-out test split.
        study: The search's study (for the search history in the report).
        best: The best configuration and its cross-validation score.
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
    from components.common.settings import RunConfig, settings_in
    from components.common.stage import stage
    from components.evaluate.logic import evaluate_model

    settings = settings_in(locals())
    with stage("evaluate", settings) as log:
        with open(best.path, encoding="utf-8") as handle:
            best_config = json.load(handle)
        result, predictions = evaluate_model(
            trained_model.path,
            read_frame(test.path),
            study.path,
            best_config,
            RunConfig(**settings),
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
        write_frame(predictions, test_predictions.path)
        log.log("evaluated", decision=result.verdict.decision, **result.metrics)
        return result.verdict.decision
