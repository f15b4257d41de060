"""The search's schedule: which configuration each trial gets, and when a trial is pruned.

Optuna's samplers and pruners look at whatever the shared study holds when they are asked, so
with several workers the trials they see depend on timing, and a rerun with the same seed
searches differently. Here a trial's configuration is a function of the seed, its number and
the trials numbered at least `lag` before it, nothing else:

- trials 0, 1, ... take the fixed configurations (the champion's, then the defaults);
- trial n then gets what a TPE sampler seeded with (seed, n) proposes from the finished trials
  numbered n - lag or less; with `wait` the worker first waits until every one of those has
  finished (trials newer than that are the ones the other workers may be running);
- a trial is pruned at a fold when its running mean is worse than the median of the complete
  trials the sampler saw, at the same fold.

With `lag` equal to the number of workers and `wait` on, N workers give the trials, and the
best of them, of a rerun exactly (a trial cap reached before the time budget); trials numbered
beyond the cap (workers asking at the same moment) are not proposed and not run. Without `wait`
(a time budget alone) nobody waits and what the sampler sees depends on timing: the search
uses the whole budget, and a rerun may differ.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

# The TPE sampler's random start-up trials, at most (fewer for a small trial cap).
STARTUP_TRIALS = 10
# A trial is pruned only once this many complete trials are known at its fold.
PRUNE_AFTER_TRIALS = 5
WAIT_POLL_SECONDS = 0.05
SEEN = (TrialState.COMPLETE, TrialState.PRUNED)

# Each trial's proposal is made in a scratch in-memory study, whose creation Optuna announces.
logging.getLogger("optuna.storages._in_memory").setLevel(logging.WARNING)

# A function that suggests a whole configuration on a trial (define-by-run).
Suggest = Callable[[optuna.Trial], Any]


def proposal_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial `number` of a search seeded with `seed`."""
    return (seed * 1_000_003 + number) % 2**32


class ScheduledSampler(optuna.samplers.BaseSampler):
    """Configurations by trial number (see the module's docstring). `fixed` holds the flat,
    prefixed parameters of the first trials, each with the user attribute that marks it."""

    def __init__(
        self,
        suggest: Suggest,
        seed: int,
        lag: int,
        wait: bool,
        fixed: Sequence[tuple[dict[str, Any], str]] = (),
        startup: int = STARTUP_TRIALS,
        deadline: float = float("inf"),
        cap: float = float("inf"),
    ) -> None:
        self.suggest, self.seed, self.lag, self.wait = suggest, seed, max(1, lag), wait
        self.fixed, self.startup, self.deadline, self.cap = list(fixed), startup, deadline, cap
        self.planned: dict[int, dict[str, Any]] = {}

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def mark(self, number: int) -> str | None:
        """The user attribute that marks trial `number` as a fixed configuration, if it is."""
        return self.fixed[number][1] if number < len(self.fixed) else None

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        number = trial.number
        if number < len(self.fixed):
            self.planned[number] = dict(self.fixed[number][0])
        elif number < self.cap:
            self.planned[number] = self.propose(study, number)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        planned = self.planned.get(trial.number, {})
        if param_name in planned and param_distribution._contains(
            param_distribution.to_internal_repr(planned[param_name])
        ):
            return planned[param_name]
        # a fixed configuration from another version of the search space (an old champion's)
        fallback = optuna.samplers.RandomSampler(seed=proposal_seed(self.seed, trial.number))
        return fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.planned.pop(trial.number, None)

    def propose(self, study: optuna.Study, number: int) -> dict[str, Any]:
        """What TPE, seeded by (seed, number), proposes from the trials it may see."""
        history = seen_trials(study, number, self.lag, self.wait, self.deadline)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=proposal_seed(self.seed, number),
                n_startup_trials=self.startup,
                multivariate=True,
                group=True,
            )
            scratch = optuna.create_study(direction=study.direction, sampler=sampler)
            scratch.add_trials(history)
            proposal = scratch.ask()
            self.suggest(proposal)
        return dict(proposal.params)


def seen_trials(
    study: optuna.Study, number: int, lag: int, wait: bool, deadline: float = float("inf")
) -> list[FrozenTrial]:
    """The finished (complete or pruned) trials numbered `number - lag` or less, in number
    order. With `wait`, first wait until all of those have finished (or `deadline`, a
    time.time(), has passed: a worker that died holds its trial forever)."""
    cutoff = number - max(1, lag)
    while True:
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number <= cutoff]
        done = all(t.state.is_finished() for t in earlier)
        if done or not wait or time.time() > deadline:
            break
        time.sleep(WAIT_POLL_SECONDS)
    return sorted((t for t in earlier if t.state in SEEN), key=lambda t: t.number)


class ScheduledPruner(optuna.pruners.BasePruner):
    """Median pruning against the complete trials numbered `lag` or more before the trial
    (what its sampler saw): the same decision whichever worker runs it, and whenever. From
    fold `first_fold` on (0: the first)."""

    def __init__(self, lag: int, after: int = PRUNE_AFTER_TRIALS, first_fold: int = 1) -> None:
        self.lag, self.after, self.first_fold = max(1, lag), after, first_fold

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.first_fold:
            return False
        cutoff = trial.number - self.lag
        others = [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.number <= cutoff and step in t.intermediate_values
        ]
        if len(others) < self.after:
            return False
        median = float(np.median(others))
        mine = trial.intermediate_values[step]
        if study.direction == optuna.study.StudyDirection.MINIMIZE:
            return bool(mine > median)
        return bool(mine < median)
