"""collect: the best trial of the finished search and its configuration. Only Optuna is needed,
so this stage does not import scikit-learn's estimators, which the search does (a second of
every stage process's start-up)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna

from components.common.settings import DEFAULTS, RunConfig
from components.core.ensemble import select_ensemble
from components.core.study import WORKER_CPU_ATTR, config_from_trial, load_study, study_spec

__all__ = ["collect_best"]


def best_configuration(
    studies: list[optuna.Study], metric: str, ensemble: bool = True, fits: float = 1.0
) -> dict[str, Any]:
    """The best complete trial of the search's studies, its fold spread and the tallies, and the
    ensemble of the best trials when it beats that trial (`fits`: see select_ensemble)."""
    trials = [
        t
        for study in studies
        for t in study.get_trials(deepcopy=False)
        # asked past the cap, or at the deadline with no time for a fold: never run
        if not (t.user_attrs.get("beyond_cap") or t.user_attrs.get("not_started"))
    ]
    states = [t.state for t in trials]
    complete = [
        t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    if not complete:
        raise RuntimeError(
            f"the search finished no trial ({len(trials)} started); raise --time-budget or --trials"
        )
    minimise = studies[0].direction == optuna.study.StudyDirection.MINIMIZE
    best = min(complete, key=lambda t: (t.value if minimise else -t.value, t.number))  # type: ignore[operator]
    family, params = config_from_trial(best)
    workers = [int(t.user_attrs.get("worker", 0)) for t in trials]
    warm = [t for t in trials if t.user_attrs.get("warm_start")]
    return {
        "model": family,
        "params": params,
        "metric": metric,
        "cv_score": float(best.value),  # type: ignore[arg-type]
        "cv_std": float(best.user_attrs.get("cv_std", float("nan"))),
        "fold_scores": list(best.user_attrs.get("fold_scores", [])),
        # every promotion metric's fold scores (the noise bar of evaluate)
        "fold_metrics": dict(best.user_attrs.get("fold_metrics", {})),
        "trial": best.number,
        # the best trials' ensemble, when it beats the best trial (components/core/ensemble.py)
        "ensemble": select_ensemble(studies, best, metric, fits) if ensemble else None,
        "studies": [study.study_name for study in studies],
        # the champion's configuration, tried first: its score, and whether it won again
        "warm_start": (
            {
                "trial": warm[0].number,
                "state": warm[0].state.name,
                "cv_score": warm[0].value,
                "won": warm[0] is best,
            }
            if warm
            else None
        ),
        "trials": {
            "total": len(trials),
            "complete": len(complete),
            "pruned": states.count(optuna.trial.TrialState.PRUNED),
            "failed": states.count(optuna.trial.TrialState.FAIL),
            "per_worker": [workers.count(i) for i in range(max(workers, default=0) + 1)],
            # pruned because the next fold would have ended after the time budget
            "stopped_at_deadline": sum(
                bool(t.user_attrs.get("stopped_at_deadline")) for t in trials
            ),
            # CPU seconds of every worker's search (trials, sampling, pruning; every thread)
            "cpu_seconds": round(sum(worker_cpu(studies)), 1),
        },
    }


def worker_cpu(studies: list[optuna.Study]) -> list[float]:
    """Each worker's CPU seconds, as the tune workers recorded them in their studies."""
    return [
        float(value)
        for study in studies
        for key, value in study.user_attrs.items()
        if key.startswith(WORKER_CPU_ATTR)
    ]


def collect_best(
    study_dir: str | Path, study_names: Iterable[str], settings: RunConfig = DEFAULTS
) -> dict[str, Any]:
    """The collect stage: the best configuration over the studies the workers searched in, and
    (with `ensemble`) the ensemble of the best trials when it beats it, its members' fits after
    the search held to a share of the budget: train's, and refit's on all rows (`refit`,
    `test_size`)."""
    studies = [load_study(study_dir, name) for name in sorted(set(study_names))]
    fits = 1 + 1 / (1 - settings.test_size) if settings.refit else 1.0
    return best_configuration(studies, study_spec(study_dir)["metric"], settings.ensemble, fits)
