"""Data drift: profile the training data of a model, and compare new data against that profile.

When a model is promoted, `data_profile` stores a small JSON summary of its training data next to
it (no raw rows). A later run calls `drift_report` with that profile (the "reference") and its own
data, and gets a verdict with one entry per column.

Profile (version 1): `{"version": 1, "rows": N, "columns": {name: entry}}`. Every entry has the
column's `role`, `n` (non-missing values) and `missing_fraction`; NaN, None, NaT and ±inf are all
"missing".

- numeric (and text as character length, datetime as epoch seconds): mean/std/min/max; 101
  `quantiles` (0 %, 1 %, ..., 100 %) with the exact reference CDF at each of them (`cdf_le`:
  share <= q, `cdf_lt`: share < q); `bin_edges` = [min, unique deciles..., max] and `bin_shares`
  for the bins (-inf, min), [min, e1], (e1, e2], ..., (max, inf). Shares and CDF values are of
  the non-missing values; `missing_fraction` is of all rows.
- categorical: `shares` of the 50 most frequent categories (as text) plus `"__other__"` for the
  rest; a category the reference never listed falls into `"__other__"` when comparing.

Per-column tests (missing values are a bin of their own, so a change in the missing share counts):

- numeric: PSI over the reference bins + a missing bin; a two-sample Kolmogorov-Smirnov statistic
  evaluated at the reference quantiles (exact reference CDF there, so the statistic is a lower
  bound of the full two-sample one and the p-value is conservative), p-value from
  `scipy.stats.kstwo` at the effective size n_ref * n_cur / (n_ref + n_cur) (its limit law
  `kstwobign` above 10,000, where the two agree within 1 % and kstwo gets slow). When the missing
  share differs, a two-proportion z-test on it is combined with the KS test (Bonferroni: twice
  the smaller p-value), test name "ks+missing".
- categorical: PSI over category shares + `"__other__"` + `"__missing__"`; chi-squared goodness of
  fit of the current counts against the reference shares (`scipy.stats.chisquare`), its statistic
  scaled by n_ref / (n_ref + n_cur) because the reference shares are estimates too. Bins expected
  to hold fewer than 5 rows are pooled (Cochran's rule), and a bin the reference never saw is
  given half a reference row's share, so tiny samples and rare categories do not produce huge
  statistics.

Decision rule (effect size decides, significance guards against small samples):

- severity: "none" when p >= 0.01 or PSI < 0.1; "moderate" for 0.1 <= PSI <= 0.25; "major" for
  PSI > 0.25. A column is `drifted` when its severity is not "none".
- verdict: "drift" when any column is "major" or the drifted share of the checked columns is
  >= 0.3; otherwise "no_drift".

PSI uses shares floored at 1e-4 so an empty bin has a finite contribution. P-values become tiny
for large samples, so they never decide alone; for samples under ~20 rows PSI is always large
(most bins are empty) and the p-value stays large unless the change is gross. The p < 0.01 guard
is per column: on the 10 columns of diamonds, about 3 % of random 15-row samples still flag one
by chance (measured over 300 seeds).
Everything is deterministic: no sampling, ties broken by name.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any, Literal, NotRequired

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from typing_extensions import TypedDict

PROFILE_VERSION = 1
DRIFT_ROLES = ("numeric", "categorical", "text", "datetime")
# Roles measured on a number line: text by character length, datetime by epoch seconds.
NUMERIC_LIKE_ROLES = ("numeric", "text", "datetime")


class NumberLineEntry(TypedDict):
    """A profiled numeric, text (its length) or datetime column."""

    role: Literal["numeric", "text", "datetime"]
    n: int
    missing_fraction: float
    measure: NotRequired[str]
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    quantiles: list[float]
    cdf_le: list[float]
    cdf_lt: list[float]
    bin_edges: list[float]
    bin_shares: list[float]


class CategoricalEntry(TypedDict):
    role: Literal["categorical"]
    n: int
    missing_fraction: float
    distinct: int
    shares: dict[str, float]


class DataProfile(TypedDict):
    """data_profile.json: a version's drift reference, stored beside its model."""

    version: Literal[1]
    rows: int
    columns: dict[str, NumberLineEntry | CategoricalEntry]


QUANTILE_COUNT = 101
DECILES = tuple(range(10, 100, 10))  # positions in the 101 quantiles (10 %, ..., 90 %)
MAX_CATEGORIES = 50
OTHER = "__other__"
MISSING = "__missing__"

PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
P_VALUE_MAX = 0.01
DRIFTED_SHARE_FOR_DRIFT = 0.3
# Floor for shares in the PSI logarithm: an empty bin then adds a large but finite amount.
PSI_EPSILON = 1e-4
# Cochran's rule: the chi-squared approximation needs about five expected rows per bin.
CHI2_MIN_EXPECTED = 5.0
# Above this effective size the KS p-value comes from the Kolmogorov limit law (kstwobign).
KS_EXACT_MAX_N = 10_000
TOP_COLUMNS = 5
TOP_BINS = 3
# Bins that moved less than this (rounding noise of the stored shares) are not listed.
TOP_BIN_MIN_PSI = 1e-6
# Stored numbers are rounded so profiles are readable; all statistics are computed from the
# rounded values, so comparisons stay exact.
SIGNIFICANT_DIGITS = 10
SHARE_DECIMALS = 8

SEVERITY_RANK = {"none": 0, "moderate": 1, "major": 2}


# ---------------------------------------------------------------------------------------------
# Converting columns


def numeric_values(column: pd.Series, role: str) -> np.ndarray:
    """The column as float64 on a number line (NaN where missing, ±inf made missing)."""
    if role == "text":
        lengths = np.full(len(column), np.nan)
        present = column.notna().to_numpy()
        lengths[present] = column[present].astype(str).str.len().to_numpy(dtype=float)
        return lengths
    if role == "datetime":
        return epoch_seconds(column)
    if ptypes.is_bool_dtype(column):
        column = column.astype(float)
    numbers = pd.to_numeric(column, errors="coerce")
    array = np.asarray(numbers.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    return np.where(np.isfinite(array), array, np.nan)


def epoch_seconds(column: pd.Series) -> np.ndarray:
    """Seconds since 1970-01-01 UTC (NaN for NaT and anything unreadable as a date)."""
    if not ptypes.is_datetime64_any_dtype(column):
        column = pd.to_datetime(column, errors="coerce", utc=True)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = column.to_numpy(dtype="datetime64[ns]")
    seconds = (stamps - np.datetime64(0, "s")) / np.timedelta64(1, "s")
    return np.asarray(seconds, dtype=float)


def category_label(value: Any) -> str | None:
    """Text label of a category; None for a missing or infinite value.

    Whole floats print as integers, so codes read as 1.0 (after a NaN made the column float)
    match the 1 of a frame without missing values.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    return str(value)


def category_counts(column: pd.Series) -> dict[str, int]:
    """Rows per category label, most frequent first (ties by label), missing values left out."""
    counts: dict[str, int] = {}
    # value_counts works on the distinct values only, so labelling stays cheap on big frames.
    for value, count in column.value_counts(dropna=True, sort=False).items():
        label = category_label(value)
        if label is not None and count > 0:
            counts[label] = counts.get(label, 0) + int(count)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def round_significant(value: float) -> float:
    """`value` rounded to SIGNIFICANT_DIGITS significant digits (readable JSON); a finite value
    stays finite (1.7976931348623157e308 rounds up past the largest float, to inf)."""
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return rounded if math.isfinite(rounded) or not math.isfinite(value) else float(value)


def spread(present: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation without overflow: values near the largest float
    square to inf, so both are computed on the values scaled by their largest magnitude."""
    scale = float(np.max(np.abs(present))) or 1.0
    scaled = present / scale
    std = float(scaled.std(ddof=1)) * scale if len(present) > 1 else 0.0
    return float(scaled.mean()) * scale, std


def round_share(value: float) -> float:
    """A share in [0, 1] rounded to SHARE_DECIMALS decimals."""
    return round(float(value), SHARE_DECIMALS)


# ---------------------------------------------------------------------------------------------
# Profiles


class SortedNumbers:
    """Columns of one frame on a number line, missing values removed, sorted: made once per
    column and role, and shared by the profile and the drift tests of the same frame (sorting
    lets both count values at their grid points with two binary searches)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.made: dict[tuple[str, str], np.ndarray] = {}

    def present(self, name: Any, role: str) -> np.ndarray:
        key = (str(name), role)
        if key not in self.made:
            values = numeric_values(self.frame[name], role)
            self.made[key] = np.sort(values[~np.isnan(values)])
        return self.made[key]


def data_profile(
    frame: pd.DataFrame, roles: dict[str, str], numbers: SortedNumbers | None = None
) -> dict[str, Any]:
    """JSON-serialisable reference statistics of `frame` for the columns in `roles`.

    `roles` maps column name to role; only numeric, categorical, text and datetime columns are
    profiled (id, constant, empty and other roles are left out). See the module docstring for
    the layout. The result holds no raw rows and is identical for identical input.
    """
    absent = [name for name, role in roles.items() if role in DRIFT_ROLES and name not in frame]
    if absent:
        raise ValueError(
            f"The 'roles' of data_profile name columns that are not in the frame: {absent!r}; "
            f"the frame has {[str(c) for c in frame.columns]!r}."
        )
    numbers = numbers or SortedNumbers(frame)
    columns: dict[str, Any] = {}
    for name, role in roles.items():
        if role in NUMERIC_LIKE_ROLES:
            columns[str(name)] = numeric_profile(numbers.present(name, role), len(frame), role)
        elif role == "categorical":
            columns[str(name)] = categorical_profile(frame[name])
    return {"version": PROFILE_VERSION, "rows": len(frame), "columns": columns}


def numeric_profile(present: np.ndarray, rows: int, role: str) -> dict[str, Any]:
    """Profile entry of a number-line column (see the module docstring) from its `present`
    values, sorted, out of `rows`."""
    n = len(present)
    entry: dict[str, Any] = {
        "role": role,
        "n": n,
        "missing_fraction": round_share(1 - n / rows) if rows else 0.0,
    }
    if role == "text":
        entry["measure"] = "character length"
    elif role == "datetime":
        entry["measure"] = "seconds since 1970-01-01 UTC"
    if n == 0:
        # An all-missing reference: only the missing share can be compared later.
        entry.update(mean=None, std=None, min=None, max=None, quantiles=[], cdf_le=[], cdf_lt=[])
        entry.update(bin_edges=[], bin_shares=[])
        return entry
    quantiles = [round_significant(q) for q in sorted_quantiles(present)]
    edges = bin_edges(quantiles)
    grid = np.asarray(quantiles)
    # Exact reference CDF at the stored (rounded) quantiles: counts of values <= q and < q.
    at_or_below, below = counts_at(present, grid)
    cdf_le, cdf_lt = at_or_below / n, below / n
    shares = bin_counts(grid, at_or_below, below, edges, n) / n
    mean, std = spread(present)
    entry.update(
        mean=round_significant(mean),
        std=round_significant(std),
        min=quantiles[0],
        max=quantiles[-1],
        quantiles=quantiles,
        cdf_le=[round_share(v) for v in cdf_le],
        cdf_lt=[round_share(v) for v in cdf_lt],
        bin_edges=edges,
        bin_shares=[round_share(v) for v in shares],
    )
    return entry


def sorted_quantiles(ordered: np.ndarray) -> np.ndarray:
    """The 0 %, 1 %, ..., 100 % quantiles of sorted values (linear interpolation, as numpy)."""
    position = np.linspace(0.0, 1.0, QUANTILE_COUNT) * (len(ordered) - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    weight = position - below
    return ordered[below] + weight * (ordered[above] - ordered[below])


def bin_edges(quantiles: list[float]) -> list[float]:
    """[min, unique deciles above min..., max]: the PSI bins' edges (ties merge bins)."""
    inner = sorted({quantiles[i] for i in DECILES} | {quantiles[-1]})
    return [quantiles[0], *inner]


def bin_counts(
    grid: np.ndarray, at_or_below: np.ndarray, below: np.ndarray, edges: list[float], n: int
) -> np.ndarray:
    """Counts in the bins (-inf, e0), [e0, e1], (e1, e2], ..., (e_last, inf) of `n` values.

    Derived from the counts <= and < each point of the sorted `grid` (which holds every edge),
    so the rows are scanned once for both the KS statistic and the PSI bins.
    """
    at = np.searchsorted(grid, edges)
    cumulative = np.concatenate([[0], [below[at[0]]], at_or_below[at[1:]], [n]])
    return np.diff(cumulative)


def categorical_profile(column: pd.Series) -> dict[str, Any]:
    """Profile entry of a categorical column: shares of the top categories and of the rest."""
    counts = category_counts(column)
    n = sum(counts.values())
    shares: dict[str, float] = {}
    for label, count in list(counts.items())[:MAX_CATEGORIES]:
        shares[label] = round_share(count / n)
    tail = sum(list(counts.values())[MAX_CATEGORIES:])
    # A real category called "__other__" would share the bucket; it is only a name.
    shares[OTHER] = round_share(shares.get(OTHER, 0.0) + (tail / n if n else 0.0))
    return {
        "role": "categorical",
        "n": n,
        "missing_fraction": round_share(1 - n / len(column)) if len(column) else 0.0,
        "distinct": len(counts),
        "shares": shares,
    }


# ---------------------------------------------------------------------------------------------
# Comparing


def drift_report(
    reference: dict[str, Any],
    frame: pd.DataFrame,
    roles: dict[str, str],
    numbers: SortedNumbers | None = None,
) -> dict[str, Any]:
    """Compare `frame` with the `reference` profile; verdict, per-column tests and thresholds.

    A column is compared when it is in the reference profile, in `frame` and in `roles`; the
    reference's role picks the test (so a numeric column that has become "constant" is still
    compared). Columns on only one side are listed under "skipped" with the reason. "top"
    names up to five drifted columns (empty when none drifted), most drifted first.
    """
    check_profile(reference)
    numbers = numbers or SortedNumbers(frame)
    profiled: dict[str, Any] = reference["columns"]
    in_frame = {str(c): c for c in frame.columns}
    wanted = {str(name): role for name, role in roles.items()}
    rows_ref = int(reference["rows"])
    entries: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for name in sorted(set(profiled) | {n for n, r in wanted.items() if r in DRIFT_ROLES}):
        reason = skip_reason(name, profiled, in_frame, wanted)
        if reason:
            skipped.append({"column": name, "reason": reason})
            continue
        entry = compare_column(profiled[name], rows_ref, frame[in_frame[name]], numbers)
        entries.append({"column": name, **entry})
    entries.sort(key=drift_order)
    return summarise(entries, skipped)


def check_profile(reference: dict[str, Any]) -> None:
    """Fail early on something that is not a version-1 profile from `data_profile`."""
    if not isinstance(reference, dict) or reference.get("version") != PROFILE_VERSION:
        got = reference.get("version") if isinstance(reference, dict) else type(reference).__name__
        raise ValueError(
            f"The 'reference' of drift_report must be a data_profile of version "
            f"{PROFILE_VERSION}; got version {got!r}."
        )
    if not isinstance(reference.get("columns"), dict) or "rows" not in reference:
        raise ValueError(
            "The 'reference' of drift_report must have 'rows' and a 'columns' mapping; "
            f"got keys {sorted(reference)!r}."
        )


def skip_reason(
    name: str, profiled: dict[str, Any], in_frame: dict[str, Any], wanted: dict[str, str]
) -> str:
    """Why column `name` cannot be compared ("" when it can)."""
    if name not in profiled:
        return "not in the reference profile"
    if name not in in_frame:
        return "not in the current data"
    if name not in wanted:
        return "not in the current roles"
    return ""


def compare_column(
    profile: dict[str, Any], rows_ref: int, column: pd.Series, numbers: SortedNumbers
) -> dict[str, Any]:
    """Tests of one column against its profile entry (role, test, statistic, p, PSI, ...)."""
    role = profile["role"]
    if role == "categorical":
        result = compare_categorical(profile, rows_ref, column)
    else:
        result = compare_numeric(profile, rows_ref, numbers.present(column.name, role), len(column))
    severity = severity_of(result["psi"], result["p_value"])
    return {
        "role": role,
        "test": result["test"],
        "statistic": round(result["statistic"], 6),
        "p_value": float(f"{result['p_value']:.6g}"),
        "psi": round(result["psi"], 6),
        "severity": severity,
        "drifted": severity != "none",
        "n_reference": int(profile["n"]),
        "n_current": result["n_current"],
        "missing_reference": float(profile["missing_fraction"]),
        "missing_current": round_share(result["missing_current"]),
        "top_bins": result["top_bins"],
    }


def compare_numeric(
    profile: dict[str, Any], rows_ref: int, present: np.ndarray, rows_cur: int
) -> dict[str, Any]:
    """PSI on the reference bins (+ missing) and KS at the reference quantiles (+ missing test),
    from the `present` values, sorted, out of `rows_cur`."""
    n_ref, n_cur = int(profile["n"]), len(present)
    edges: list[float] = profile["bin_edges"]
    if edges:
        grid = np.unique(np.asarray(profile["quantiles"] + edges, dtype=float))
        at_or_below, below = counts_at(present, grid)
        bins = bin_counts(grid, at_or_below, below, edges, n_cur)
        statistic, p_value = ks_at_quantiles(profile, grid, at_or_below, below, n_cur)
        ref_shares = np.asarray(profile["bin_shares"], dtype=float)
        labels = [*numeric_bin_labels(edges, profile["role"]), MISSING]
    else:
        # All-missing reference: one bin for every present value, one for missing.
        bins, statistic, p_value = np.asarray([n_cur]), 0.0, 1.0
        ref_shares, labels = np.asarray([1.0]), ["present", MISSING]
    ref_probs = with_missing(ref_shares, n_ref, rows_ref)
    cur_counts = np.append(bins, rows_cur - n_cur)
    p_missing = missing_p_value(rows_ref - n_ref, rows_ref, rows_cur - n_cur, rows_cur)
    test = "ks"
    if p_missing is not None:
        # Two tests on one column: Bonferroni keeps the column's false-alarm rate at alpha.
        p_value, test = min(1.0, 2 * min(p_value, p_missing)), "ks+missing"
    return finish(test, statistic, p_value, ref_probs, cur_counts, labels, n_cur, rows_cur)


def with_missing(shares: np.ndarray, n_present: int, rows: int) -> np.ndarray:
    """Shares of the present values scaled to all rows, with the missing share appended."""
    if rows == 0:
        return np.zeros(len(shares) + 1)
    present_share = n_present / rows
    return np.append(shares * present_share, 1 - present_share)


def numeric_bin_labels(edges: list[float], role: str) -> list[str]:
    """Readable names of the bins of `bin_counts` ('< 1.5', '[1.5, 2]', '(2, 3]', '> 3')."""
    if role == "datetime":
        # Epoch seconds mean nothing to a reader; show the instants.
        edge_text = [pd.Timestamp(edge, unit="s").isoformat() for edge in edges]
    else:
        edge_text = [f"{edge:g}" for edge in edges]
    labels = [f"< {edge_text[0]}", f"[{edge_text[0]}, {edge_text[1]}]"]
    labels += [f"({low}, {high}]" for low, high in pairwise(edge_text[1:])]
    return [*labels, f"> {edge_text[-1]}"]


def ks_at_quantiles(
    profile: dict[str, Any],
    grid: np.ndarray,
    at_or_below: np.ndarray,
    below: np.ndarray,
    n_cur: int,
) -> tuple[float, float]:
    """Two-sample KS statistic at the reference quantiles and its asymptotic p-value.

    The reference CDF is known exactly at its quantiles (both sides of each, for ties), so the
    largest gap there is a lower bound of the full statistic: conservative, never inflated.
    `at_or_below`/`below` count the current values <= and < each point of `grid`.
    """
    from scipy import stats  # here, not at the top: half a second that only drift needs

    n_ref = int(profile["n"])
    if n_ref == 0 or n_cur == 0:
        return 0.0, 1.0
    quantiles, first = np.unique(np.asarray(profile["quantiles"], dtype=float), return_index=True)
    ref_le = np.asarray(profile["cdf_le"], dtype=float)[first]
    ref_lt = np.asarray(profile["cdf_lt"], dtype=float)[first]
    at = np.searchsorted(grid, quantiles)
    gap_le = np.abs(at_or_below[at] / n_cur - ref_le).max()
    gap_lt = np.abs(below[at] / n_cur - ref_lt).max()
    statistic = float(max(gap_le, gap_lt))
    effective_n = round(n_ref * n_cur / (n_ref + n_cur))
    if effective_n < 1:
        return statistic, 1.0
    if effective_n > KS_EXACT_MAX_N:
        # kstwo's exact sum costs ~0.5 s at n = 500k; the limit law differs by < 1 % there.
        return statistic, float(stats.kstwobign.sf(statistic * math.sqrt(effective_n)))
    # As scipy.stats.ks_2samp(method="asymp"): the one-sample law at the effective size.
    return statistic, float(stats.kstwo.sf(statistic, effective_n))


def counts_at(ordered: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the sorted values `ordered` that are <= and < each point of `grid`."""
    return (
        np.searchsorted(ordered, grid, side="right"),
        np.searchsorted(ordered, grid, side="left"),
    )


def missing_p_value(
    missing_ref: int, rows_ref: int, missing_cur: int, rows_cur: int
) -> float | None:
    """Two-sided two-proportion z-test of the missing shares; None when there is nothing to test."""
    from scipy import stats

    if rows_ref == 0 or rows_cur == 0 or missing_ref * rows_cur == missing_cur * rows_ref:
        return None
    pooled = (missing_ref + missing_cur) / (rows_ref + rows_cur)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / rows_ref + 1 / rows_cur))
    difference = abs(missing_ref / rows_ref - missing_cur / rows_cur)
    return float(2 * stats.norm.sf(difference / spread))


def compare_categorical(
    profile: dict[str, Any], rows_ref: int, column: pd.Series
) -> dict[str, Any]:
    """PSI over category shares (+ __other__, __missing__) and a chi-squared goodness of fit."""
    shares: dict[str, float] = profile["shares"]
    labels = [label for label in shares if label != OTHER] + [OTHER, MISSING]
    listed = {label: i for i, label in enumerate(labels[:-2])}
    cur_counts = np.zeros(len(labels), dtype=np.int64)
    for label, count in category_counts(column).items():
        cur_counts[listed.get(label, len(labels) - 2)] += count  # unseen -> __other__
    rows_cur = len(column)
    n_cur = int(cur_counts.sum())
    cur_counts[-1] = rows_cur - n_cur
    n_ref = int(profile["n"])
    ref_shares = np.asarray([shares[label] for label in labels[:-2]] + [shares.get(OTHER, 0.0)])
    ref_probs = with_missing(ref_shares, n_ref, rows_ref)
    statistic, p_value = chi2_goodness_of_fit(cur_counts, ref_probs, rows_ref)
    return finish("chi2", statistic, p_value, ref_probs, cur_counts, labels, n_cur, rows_cur)


def chi2_goodness_of_fit(
    observed: np.ndarray, ref_probs: np.ndarray, rows_ref: int
) -> tuple[float, float]:
    """Chi-squared test of `observed` counts against reference shares, small bins pooled.

    A bin the reference never saw gets half a reference row's share: it may well exist with a
    share below 1/rows_ref, so a zero would turn one stray row into an infinite statistic.
    The reference shares are themselves estimated from rows_ref rows, so the goodness-of-fit
    statistic is scaled by rows_ref / (rows_ref + rows_cur), the same effective size as the KS
    test; unscaled, two random halves of one table differ "significantly" far too often.
    """
    from scipy import stats

    total = int(observed.sum())
    if total == 0 or rows_ref == 0:
        return 0.0, 1.0
    probs = np.maximum(ref_probs, 0.5 / rows_ref)
    expected = probs / probs.sum() * total
    observed, expected = pool_small_bins(observed.astype(float), expected)
    if len(observed) < 2:
        return 0.0, 1.0  # a single bin always fits: nothing to test
    goodness_of_fit = float(stats.chisquare(observed, expected).statistic)
    statistic = goodness_of_fit * rows_ref / (rows_ref + total)
    return statistic, float(stats.chi2.sf(statistic, len(observed) - 1))


def pool_small_bins(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge bins expecting < CHI2_MIN_EXPECTED rows into one; a still-small pool joins the
    smallest other bin unless that would leave a single bin (the pool is then the signal)."""
    small = expected < CHI2_MIN_EXPECTED
    if not small.any():
        return observed, expected
    kept_obs, kept_exp = observed[~small], expected[~small]
    pool_obs, pool_exp = observed[small].sum(), expected[small].sum()
    if pool_exp < CHI2_MIN_EXPECTED and len(kept_exp) >= 2:
        smallest = int(np.argmin(kept_exp))
        kept_obs, kept_exp = kept_obs.copy(), kept_exp.copy()
        kept_obs[smallest] += pool_obs
        kept_exp[smallest] += pool_exp
        return kept_obs, kept_exp
    return np.append(kept_obs, pool_obs), np.append(kept_exp, pool_exp)


def finish(
    test: str,
    statistic: float,
    p_value: float,
    ref_probs: np.ndarray,
    cur_counts: np.ndarray,
    labels: list[str],
    n_current: int,
    rows_current: int,
) -> dict[str, Any]:
    """PSI, the bins that moved most, and the test result of one column, in one mapping."""
    cur_probs = cur_counts / rows_current if rows_current else np.zeros(len(cur_counts))
    contributions = psi_terms(ref_probs, cur_probs) if rows_current else np.zeros(len(labels))
    order = sorted(range(len(labels)), key=lambda i: (-contributions[i], i))[:TOP_BINS]
    top_bins = [
        {
            "bin": labels[i],
            "reference": round_share(ref_probs[i]),
            "current": round_share(cur_probs[i]),
        }
        for i in order
        if contributions[i] > TOP_BIN_MIN_PSI
    ]
    return {
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "psi": float(contributions.sum()),
        "n_current": n_current,
        "missing_current": 1 - n_current / rows_current if rows_current else 0.0,
        "top_bins": top_bins,
    }


def psi_terms(ref_probs: np.ndarray, cur_probs: np.ndarray) -> np.ndarray:
    """Per-bin Population Stability Index terms (cur - ref) * ln(cur / ref), shares floored."""
    ref = np.maximum(ref_probs, PSI_EPSILON)
    cur = np.maximum(cur_probs, PSI_EPSILON)
    return np.asarray((cur - ref) * np.log(cur / ref), dtype=float)


def severity_of(psi: float, p_value: float) -> str:
    """'none' | 'moderate' | 'major': PSI bands, but only for a significant change."""
    if p_value >= P_VALUE_MAX or psi < PSI_MODERATE:
        return "none"
    return "major" if psi > PSI_MAJOR else "moderate"


def drift_order(entry: dict[str, Any]) -> tuple[int, float, float, str]:
    """Sort key: most drifted first (severity, then PSI, then p-value), ties by name."""
    return (-SEVERITY_RANK[entry["severity"]], -entry["psi"], entry["p_value"], entry["column"])


def summarise(entries: list[dict[str, Any]], skipped: list[dict[str, str]]) -> dict[str, Any]:
    """The report: verdict by the documented rule, top drifted columns and the thresholds."""
    drifted = [e for e in entries if e["drifted"]]
    share = len(drifted) / len(entries) if entries else 0.0
    major = any(e["severity"] == "major" for e in entries)
    return {
        "verdict": "drift" if major or share >= DRIFTED_SHARE_FOR_DRIFT else "no_drift",
        "drifted_share": round(share, 6),
        "columns_checked": len(entries),
        "top": [e["column"] for e in drifted[:TOP_COLUMNS]],
        "columns": entries,
        "skipped": skipped,
        "thresholds": thresholds(),
    }


def thresholds() -> dict[str, Any]:
    """The numbers the decision used, and the rule in words."""
    return {
        "psi_moderate": PSI_MODERATE,
        "psi_major": PSI_MAJOR,
        "p_value": P_VALUE_MAX,
        "drifted_share": DRIFTED_SHARE_FOR_DRIFT,
        "psi_epsilon": PSI_EPSILON,
        "chi2_min_expected": CHI2_MIN_EXPECTED,
        "rule": (
            f"a column drifted when p < {P_VALUE_MAX} and PSI >= {PSI_MODERATE} "
            f"(major when PSI > {PSI_MAJOR}); verdict 'drift' when any column is major or the "
            f"drifted share of checked columns is >= {DRIFTED_SHARE_FOR_DRIFT}"
        ),
    }
