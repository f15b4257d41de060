"""The run report: one self-contained HTML page (plots embedded as PNG) for people to look at.

It renders in the Kubeflow UI (an HTML artifact) and opens locally from the run folder.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn import metrics as skm

from components.core.metrics import label_array

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04"]
CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:20px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#94a3b8}
main{padding:24px 32px;max-width:1200px}
.cards{display:flex;gap:16px;flex-wrap:wrap;margin-bottom:24px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 18px;min-width:150px}
.card .label{font-size:12px;text-transform:uppercase;color:#64748b;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:600;margin-top:4px}
.verdict{border-radius:10px;padding:14px 18px;margin-bottom:24px;font-weight:500}
.promote{background:#dcfce7;border:1px solid #86efac}.keep{background:#fef9c3;border:1px solid #fde047}
.grid{display:grid;grid-template-columns:1fr;gap:20px}
figure{background:#fff;border:1px solid #e2e8f0;border-radius:10px;margin:0;padding:12px}
figure img{width:100%} figcaption{font-size:13px;color:#475569;margin-top:6px}
table{border-collapse:collapse;background:#fff;margin:8px 0 24px;font-size:14px}
td,th{border:1px solid #e2e8f0;padding:6px 10px;text-align:left} th{background:#f1f5f9}
h2{margin-top:32px;font-size:18px}
"""


def figure_to_img(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{encoded}">'


def classification_plots(
    y: pd.Series, proba: np.ndarray, classes: list[Any]
) -> list[tuple[str, str]]:
    """Confusion matrix, and ROC and precision-recall curves (one-vs-rest for multiclass)."""
    y_obj = label_array(y)
    predicted = label_array(classes)[proba.argmax(axis=1)]
    fig, (matrix_ax, roc_ax, pr_ax) = plt.subplots(
        1, 3, figsize=(14, 4.3), gridspec_kw={"width_ratios": [1, 1.15, 1.15]}
    )
    skm.ConfusionMatrixDisplay.from_predictions(
        y_obj, predicted, labels=classes, ax=matrix_ax, cmap="Blues", colorbar=False
    )
    matrix_ax.set_title("Confusion matrix")
    shown = classes[1:] if len(classes) == 2 else classes
    for i, cls in enumerate(shown):
        column = classes.index(cls)
        positive = y_obj == cls
        if positive.all() or not positive.any():
            continue
        color = PALETTE[i % len(PALETTE)]
        fpr, tpr, _ = skm.roc_curve(positive, proba[:, column])
        auc = skm.auc(fpr, tpr)
        roc_ax.plot(fpr, tpr, color=color, label=f"{cls} (AUC {auc:.3f})")
        precision, recall, _ = skm.precision_recall_curve(positive, proba[:, column])
        ap = skm.average_precision_score(positive, proba[:, column])
        pr_ax.plot(recall, precision, color=color, label=f"{cls} (AP {ap:.3f})")
    roc_ax.plot([0, 1], [0, 1], ls="--", color="#94a3b8")
    roc_ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    pr_ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    caption = (
        "On the held-out test split. Confusion matrix rows: true class, columns: predicted "
        "class (the most probable one)."
    )
    return [(figure_to_img(fig), caption)]


def regression_plots(y: pd.Series, predicted: np.ndarray) -> list[tuple[str, str]]:
    """Predicted against actual, and residuals against predicted."""
    actual = np.asarray(y, dtype=float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.3))
    left.scatter(actual, predicted, s=10, alpha=0.5, color=PALETTE[0])
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], ls="--", color="#94a3b8")
    left.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual")
    right.scatter(predicted, actual - predicted, s=10, alpha=0.5, color=PALETTE[1])
    right.axhline(0, ls="--", color="#94a3b8")
    right.set(xlabel="Predicted", ylabel="Residual (actual - predicted)", title="Residuals")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return [(figure_to_img(fig), "On the held-out test split.")]


def search_history_plot(trials: pd.DataFrame, direction: str) -> tuple[str, str]:
    """Every trial's CV score by trial number, coloured by model family, with the best so far."""
    fig, ax = plt.subplots(figsize=(14, 4))
    complete = trials[trials["state"] == "COMPLETE"]
    for i, (family, rows) in enumerate(complete.groupby("model", sort=True)):
        ax.scatter(
            rows["number"], rows["value"], s=22, color=PALETTE[i % len(PALETTE)], label=str(family)
        )
    pruned = trials[trials["state"] == "PRUNED"]
    if len(pruned):
        ax.scatter(
            pruned["number"],
            pruned["value"],
            s=14,
            marker="x",
            color="#94a3b8",
            label="pruned (partial score)",
        )
    if len(complete):
        ordered = complete.sort_values("number")
        best = ordered["value"].cummin() if direction == "minimize" else ordered["value"].cummax()
        ax.step(ordered["number"], best, where="post", color="#0f172a", lw=1.5, label="best so far")
    ax.set(xlabel="Trial", ylabel="Cross-validated score", title="Search history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return figure_to_img(
        fig
    ), f"{len(trials)} trials: {len(complete)} complete, {len(pruned)} pruned."


def importance_plot(importances: dict[str, float], family: str, trials: int) -> tuple[str, str]:
    """The best family's hyperparameters by importance (horizontal bars, largest on top)."""
    names, values = list(importances)[::-1], list(importances.values())[::-1]
    fig, ax = plt.subplots(figsize=(14, 0.45 * len(names) + 1.2))
    ax.barh(names, values, color=PALETTE[0])
    ax.set(xlabel="Share of the score's variance (fANOVA)", xlim=(0, 1))
    ax.set_title(f"Hyperparameter importance: {family}")
    ax.grid(alpha=0.3, axis="x")
    return figure_to_img(fig), (
        f"Which of {family}'s hyperparameters moved the cross-validated score, over its "
        f"{trials} complete trials."
    )


def promotion_rows(verdict: dict[str, Any]) -> list[tuple[str, Any]]:
    """The promotion decision's numbers, as a table."""
    rows: list[tuple[str, Any]] = [("decision", verdict["decision"]), ("metric", verdict["metric"])]
    rows.append(("challenger (this run)", verdict["challenger"]))
    if verdict.get("champion") is not None:
        rows.append((f"champion ({verdict.get('champion_version')})", verdict["champion"]))
        rows.append(("gain", verdict["delta"]))
    if verdict.get("interval") is not None:
        low, high = verdict["interval"]
        rows.append(
            (
                f"{verdict['confidence']:.0%} interval of the gain (paired bootstrap)",
                f"{low:+.4f} to {high:+.4f}",
            )
        )
        rows.append(("required gain (--min-improvement)", f"> {verdict['min_improvement']:g}"))
    if verdict.get("noise") is not None:
        rows.append(("required gain (the search's noise: cv standard error)", verdict["noise"]))
    return rows


def warm_start_text(warm: dict[str, Any] | None) -> str:
    if not warm:
        return "none (no champion for this target and task)"
    score = "no score" if warm.get("cv_score") is None else f"cv {warm['cv_score']:.4f}"
    outcome = "the best again" if warm.get("won") else "beaten by the search"
    return f"trial {warm['trial']} ({warm['state'].lower()}, {score}): {outcome}"


def table(rows: list[tuple[str, Any]], header: tuple[str, str] = ("", "")) -> str:
    head = (
        f"<tr><th>{html.escape(header[0])}</th><th>{html.escape(header[1])}</th></tr>"
        if any(header)
        else ""
    )
    body = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(fmt(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{head}{body}</table>"


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def ensemble_section(best: dict[str, Any]) -> str:
    """The served ensemble: its cross-validated score against the best trial's, and each
    member with its weight."""
    ensemble = best.get("ensemble")
    if not ensemble:
        return ""
    summary = [
        (f"cv {best['metric']} of the ensemble (mean)", ensemble["cv_score"]),
        (f"cv {best['metric']} of the best trial (mean)", best["cv_score"]),
        ("gain over the best trial", ensemble["gain"]),
        (
            "each fold scored by the selection on the others: ensemble / best trial",
            f"{ensemble['held_out']['ensemble']:.4f} / {ensemble['held_out']['best_trial']:.4f}",
        ),
        (
            "members (picked from the best trials)",
            f"{len(ensemble['members'])} of {ensemble['candidates']}",
        ),
    ]
    members = [
        (
            f"trial {m['trial']} · {m['model']} · cv {m['cv_score']:.4f}",
            f"{m['weight']:.2f}  ({', '.join(f'{k}={fmt(v)}' for k, v in sorted(m['params'].items()))})",
        )
        for m in ensemble["members"]
    ]
    return (
        "<h2>Ensemble (the model served)</h2>"
        f"{table(summary)}{table(members, ('member', 'weight  (parameters)'))}"
    )


def roles_section(roles: list[dict[str, str]]) -> str:
    """Each input column's detected (or configured) role and what the model does with it."""
    if not roles:
        return ""
    rows = [(r["column"], f"{r['role']} · {r['use']}") for r in roles]
    return f"<h2>Column roles</h2>{table(rows, ('column', 'role · use'))}"


def render_report(
    title: str,
    subtitle: str,
    test_metrics: dict[str, float],
    verdict: dict[str, Any],
    best: dict[str, Any],
    plots: list[tuple[str, str]],
    facts: list[tuple[str, Any]],
    roles: list[dict[str, str]] | None = None,
) -> str:
    """The whole HTML page."""
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(k)}</div>'
        f'<div class="value">{v:.4f}</div></div>'
        for k, v in test_metrics.items()
    )
    decision = verdict["decision"]
    headline = "Promoted to champion" if decision == "promote" else "Champion kept"
    banner = f'<div class="verdict {decision}">{headline}: {html.escape(verdict["reason"])}</div>'
    figures = "".join(
        f"<figure>{img}<figcaption>{html.escape(cap)}</figcaption></figure>" for img, cap in plots
    )
    params = [(k, v) for k, v in sorted(best["params"].items())]
    best_rows = [
        ("model family", best["model"]),
        (f"cv {best['metric']} (mean)", best["cv_score"]),
        (f"cv {best['metric']} (std across folds)", best["cv_std"]),
        (
            "trials (complete / pruned / failed)",
            " / ".join(str(best["trials"][k]) for k in ("complete", "pruned", "failed")),
        ),
        ("champion's configuration (warm start)", warm_start_text(best.get("warm_start"))),
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><header><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(subtitle)}</p></header><main>"
        f"<div class='cards'>{cards}</div>{banner}"
        f"<h2>Promotion</h2>{table(promotion_rows(verdict))}"
        f"<div class='grid'>{figures}</div>"
        f"<h2>Best configuration</h2>{table(best_rows)}{table(params, ('parameter', 'value'))}"
        + ensemble_section(best)
        + f"<h2>Run</h2>{table(facts)}"
        + roles_section(roles or [])
        + "</main></body></html>"
    )
