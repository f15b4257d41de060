"""The data-quality report: one self-contained HTML page (inline SVG plots, no scripts), which
the Kubeflow UI renders as an HTML artifact and a browser opens locally."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from components.core.schema import TableSchema

SEVERITY_COLOURS = {"error": "#c0392b", "warning": "#d68910", "info": "#5d6d7e"}
VERDICT_COLOURS = {"pass": "#1e8449", "warn": "#d68910", "fail": "#c0392b"}
BAR_COLOUR = "#2e86c1"
HISTOGRAM_BINS = 24
TOP_CATEGORIES = 8
REPORT_SAMPLE_ROWS = 20_000

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1b2631}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.verdict{display:inline-block;padding:3px 12px;border-radius:12px;color:#fff;font-weight:600}
.muted{color:#5d6d7e} table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e8e8;vertical-align:middle}
th{background:#f4f6f7;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.sev{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #e5e8e8;border-radius:8px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}
"""


def svg_bars(heights: list[float], width: int = 180, height: int = 36) -> str:
    """A tiny bar chart (histogram or category shares) as inline SVG."""
    if not heights or max(heights) <= 0:
        return ""
    top = max(heights)
    step = width / len(heights)
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - h / top * height:.1f}" '
        f'width="{max(step - 1, 1):.1f}" height="{h / top * height:.1f}"/>'
        for i, h in enumerate(heights)
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'fill="{BAR_COLOUR}" role="img">{bars}</svg>'
    )


def column_plot(column: pd.Series, role: str) -> str:
    values = column.dropna()
    if values.empty:
        return ""
    if role == "numeric" and ptypes.is_numeric_dtype(values):
        finite = values.to_numpy(dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            return ""
        counts, _ = np.histogram(finite, bins=HISTOGRAM_BINS)
        return svg_bars([float(c) for c in counts])
    if role == "text":
        counts, _ = np.histogram(values.astype(str).str.len(), bins=HISTOGRAM_BINS)
        return svg_bars([float(c) for c in counts])
    shares = values.astype(str).value_counts().head(TOP_CATEGORIES)
    return svg_bars([float(v) for v in shares.to_numpy()])


def column_summary(column: pd.Series, role: str) -> str:
    """Range and centre for numbers, top values for categories, lengths for text."""
    values = column.dropna()
    if values.empty:
        return "no values"
    if role == "numeric" and ptypes.is_numeric_dtype(values):
        return (
            f"min {values.min():.4g} · median {values.median():.4g} · max {values.max():.4g} "
            f"· mean {values.mean():.4g}"
        )
    if role == "text":
        lengths = values.astype(str).str.len()
        return f"length {lengths.min()}–{lengths.max()} characters, median {lengths.median():.0f}"
    top = values.astype(str).value_counts(normalize=True).head(3)
    return " · ".join(f"{html.escape(str(k))} {v:.0%}" for k, v in top.items())


def anomaly_rows(anomalies: list[dict[str, str]]) -> str:
    if not anomalies:
        return '<tr><td colspan="4" class="muted">No anomalies.</td></tr>'
    return "".join(
        f"<tr><td><span class='sev' style='background:{SEVERITY_COLOURS[a['severity']]}'>"
        f"{a['severity']}</span></td><td>{html.escape(a['kind'])}</td>"
        f"<td>{html.escape(a['column'])}</td><td>{html.escape(a['detail'])}</td></tr>"
        for a in anomalies
    )


def drift_rows(drift: dict[str, Any]) -> str:
    if drift.get("verdict") == "no_reference":
        return (
            '<tr><td colspan="6" class="muted">No reference: drift is measured against the '
            "champion's training data once a model has been promoted.</td></tr>"
        )
    return "".join(
        f"<tr><td>{html.escape(str(c['column']))}</td><td>{c['role']}</td><td>{c['test']}</td>"
        f"<td class='num'>{c['psi']:.3f}</td><td class='num'>{c['p_value']:.3g}</td>"
        f"<td>{c['severity']}</td></tr>"
        for c in drift.get("columns", [])[:25]
    )


def missing_share(column: pd.Series, entry: Mapping[str, Any]) -> float:
    """The column's missing share over all rows: the schema's, else counted."""
    share = entry.get("missing_fraction")
    return float(column.isna().mean()) if share is None else float(share)


def render_report(frame: pd.DataFrame, schema: TableSchema, quality: dict[str, Any]) -> str:
    """The report page for a validated table."""
    verdict = quality["verdict"]
    counts = quality["counts"]
    roles: dict[str, Mapping[str, Any]] = {c["name"]: c for c in schema["columns"]}
    roles[schema["target"]] = {**(schema.get("target_column") or {}), "role": "target"}
    from components.check_quality.logic import seeded_sample

    # plots and summaries from a sample; missing shares from all rows
    sample = seeded_sample(frame, REPORT_SAMPLE_ROWS)
    rows = []
    for name in frame.columns:
        entry = roles.get(str(name), {"role": "?", "type": "?"})
        role = entry["role"]
        plot_role = role
        if role == "target":
            plot_role = "numeric" if schema["task"] == "regression" else "categorical"
        column = sample[name]
        distinct = entry.get("distinct")
        at_least = "≥ " if entry.get("distinct_in_sample_of") else ""  # counted in a sample
        rows.append(
            f"<tr><td><b>{html.escape(str(name))}</b></td><td>{role}</td>"
            f"<td>{entry.get('type', '')}</td>"
            f"<td class='num'>{missing_share(frame[name], entry):.1%}</td>"
            f"<td class='num'>{'' if distinct is None else f'{at_least}{distinct:,}'}</td>"
            f"<td>{column_summary(column, plot_role)}</td>"
            f"<td>{column_plot(column, plot_role)}</td></tr>"
        )
    drift = quality["drift"]
    serving = ""
    if quality.get("environment") == "serving":
        serving = (
            f"<p class='muted'><b>Rows to score:</b> the data has no target column "
            f"{html.escape(schema['target'])!r}; the checks that need it were not made "
            f"({html.escape(', '.join(quality.get('skipped_checks', [])))}).</p>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Data quality: {html.escape(schema["target"])}</title>
<style>{STYLE}</style></head><body>
<h1>Data quality
<span class="verdict" style="background:{VERDICT_COLOURS[verdict]}">{verdict}</span></h1>
<div class="muted">target <b>{html.escape(schema["target"])}</b> · task {schema["task"]} ·
checked against: {html.escape(str(quality.get("reference", "none")))} · policy: fail on
{quality["fail_on"]}</div>
{serving}
<div class="cards">
<div class="card">rows<b>{len(frame):,}</b></div>
<div class="card">columns<b>{len(frame.columns):,}</b></div>
<div class="card">errors<b>{counts["error"]}</b></div>
<div class="card">warnings<b>{counts["warning"]}</b></div>
<div class="card">info<b>{counts["info"]}</b></div>
<div class="card">drift<b>{drift["verdict"].replace("_", " ")}</b></div>
</div>
<h2>Anomalies</h2>
<table><tr><th>severity</th><th>kind</th><th>column</th><th>detail</th></tr>
{anomaly_rows(quality["anomalies"])}</table>
<h2>Drift against the champion's data</h2>
<table><tr><th>column</th><th>role</th><th>test</th><th>PSI</th><th>p-value</th><th>severity</th></tr>
{drift_rows(drift)}</table>
<h2>Columns</h2>
<table><tr><th>column</th><th>role</th><th>type</th><th>missing</th><th>distinct</th>
<th>summary</th><th>distribution</th></tr>
{"".join(rows)}</table>
</body></html>
"""
