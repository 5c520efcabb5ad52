"""Bandit algorithms and regret bookkeeping: random, greedy, UCB, Thompson sampling (pure NumPy).

Chapter "In-context decision making", section "Bandits and regret".  The bandits
themselves are :mod:`minimal.worlds.bandits`.  Reading order: the policies
(:func:`random_policy`, :func:`greedy_policy`, :func:`make_ucb`,
:func:`make_thompson`), the loop (:func:`run_policy`) and the metrics
(:func:`suffix_failure_frequency`, :func:`min_fraction`, :func:`best_arm_rate`).
Equations, by their labels in the chapter:

* ``bandit-regret``: :math:`\\mathrm{Regret}(T) = \\sum_{t=1}^{T} (\\mu^\\star - \\mu_{a_t})`;
* ``ucb-index``: :math:`a_t = \\arg\\max_a \\hat\\mu_a + c\\,\\sigma\\sqrt{2\\log t / n_a}`;
* ``thompson``: sample :math:`\\tilde\\mu_a` from each arm's posterior, play the argmax;
* ``suffix-failure`` and ``min-frac``: EVOLvE's failure-mode metrics.

Everything is vectorized over ``N`` independent runs: every array has a
leading run axis, so 1000 bandit runs cost only a few times as much as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from minimal.worlds.bandits import KINDS, Bandit, sample_bandits

# ------------------------------------------------------------------ policies
# A policy maps the sufficient statistics of the history so far, the pull
# counts n (N, K) and reward sums s (N, K), plus the step t (1-based) to one
# action per run.  History-based agents (the transformers) use run_agent.
Policy = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]


def _argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax of (N, K), breaking finite ties uniformly at random.

    Infinite values (UCB's index of an untried arm) stay tied after the jitter,
    so untried arms are tried in index order; with i.i.d. arm means this does
    not change the expected regret.
    """
    jitter = rng.random(values.shape) * 1e-9
    return (values + jitter).argmax(1)


def random_policy(counts, sums, t, rng):
    """Uniformly random arm: the no-learning baseline, regret grows linearly."""
    return rng.integers(counts.shape[1], size=counts.shape[0])


def greedy_policy(counts, sums, t, rng):
    """Try each arm once, then always play the best empirical mean (no exploration)."""
    untried = counts == 0
    mean = sums / np.maximum(counts, 1)  # (N, K) empirical means
    return _argmax_random_ties(np.where(untried, np.inf, mean), rng)


def make_ucb(c: float = 1.0, noise: float = 0.3) -> Policy:
    """UCB with index mean + c * noise * sqrt(2 log t / n) (eq. ``ucb-index``).

    ``noise`` is the reward scale (sigma of Gaussian rewards; 0.5 bounds any
    Bernoulli reward's sub-Gaussian scale); ``c = 1`` is the textbook constant
    of Auer et al. (2002) rescaled to sigma-sub-Gaussian rewards.
    """
    if c < 0 or noise <= 0:
        raise ValueError(f"UCB needs c >= 0 and noise > 0, got c = {c}, noise = {noise}")

    def ucb_policy(counts, sums, t, rng):
        untried = counts == 0
        n = np.maximum(counts, 1)
        index = sums / n + c * noise * np.sqrt(2 * np.log(max(t, 2)) / n)  # (N, K)
        return _argmax_random_ties(np.where(untried, np.inf, index), rng)

    ucb_policy.__name__ = "ucb"
    return ucb_policy


def make_thompson(kind: str = "gaussian", noise: float = 0.3,
                  prior_mean: float = 0.5, prior_std: float = 0.5) -> Policy:
    """Thompson sampling (eq. ``thompson``) with a conjugate prior.

    Gaussian rewards: prior Normal(prior_mean, prior_std^2) on each mean, known
    noise sigma, so the posterior of arm a is Normal with precision
    1/prior_std^2 + n_a/sigma^2.  Bernoulli rewards: Beta(1, 1) priors.
    """
    if kind not in KINDS:
        raise ValueError(f"Thompson kind must be one of {KINDS}, got {kind!r}")
    if noise <= 0 or prior_std <= 0:
        raise ValueError("Thompson sampling needs noise > 0 and prior_std > 0")

    def thompson_policy(counts, sums, t, rng):
        if kind == "bernoulli":
            sample = rng.beta(1 + sums, 1 + counts - sums)  # (N, K)
        else:
            precision = 1 / prior_std**2 + counts / noise**2  # (N, K)
            post_mean = (prior_mean / prior_std**2 + sums / noise**2) / precision
            sample = post_mean + rng.standard_normal(counts.shape) / np.sqrt(precision)
        return sample.argmax(1)

    thompson_policy.__name__ = "thompson"
    return thompson_policy


# ---------------------------------------------------------------------- loop
@dataclass
class Trajectory:
    """What ``N`` runs of horizon ``H`` did: actions and rewards (N, H), and the means."""

    actions: np.ndarray
    rewards: np.ndarray
    means: np.ndarray

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    def instant_regret(self) -> np.ndarray:
        """mu* - mu_{a_t} for every run and step, (N, H)."""
        chosen = np.take_along_axis(self.means, self.actions, axis=1)  # (N, H)
        return self.means.max(1, keepdims=True) - chosen

    def cumulative_regret(self) -> np.ndarray:
        """Regret(t) of eq. ``bandit-regret`` for t = 1..H, (N, H)."""
        return self.instant_regret().cumsum(1)


def check_horizon(horizon: int) -> None:
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive int, got {horizon!r}")


def run_policy(bandit: Bandit, policy: Policy, horizon: int,
               rng: np.random.Generator) -> Trajectory:
    """Play ``policy`` for ``horizon`` steps on every run of ``bandit`` at once."""
    check_horizon(horizon)
    N, K = bandit.means.shape
    counts, sums = np.zeros((N, K)), np.zeros((N, K))
    actions = np.zeros((N, horizon), dtype=int)
    rewards = np.zeros((N, horizon))
    rows = np.arange(N)
    for t in range(horizon):
        a = policy(counts, sums, t + 1, rng)  # (N,)
        r = bandit.pull(a, rng)  # (N,)
        counts[rows, a] += 1
        sums[rows, a] += r
        actions[:, t], rewards[:, t] = a, r
    return Trajectory(actions, rewards, bandit.means.copy())


# ------------------------------------------------------------------- metrics
def suffix_failure_frequency(traj: Trajectory, t: int) -> float:
    """Fraction of runs that never pull the best arm at steps t..H (eq. ``suffix-failure``).

    ``t`` is 1-based; ``t = 1`` asks whether the best arm was ever pulled.
    """
    if not 1 <= t <= traj.horizon:
        raise ValueError(f"suffix start t must be in [1, {traj.horizon}], got {t}")
    best = traj.means.argmax(1)[:, None]  # (N, 1)
    pulled_later = (traj.actions[:, t - 1:] == best).any(1)  # (N,)
    return float(1 - pulled_later.mean())


def min_fraction(traj: Trajectory) -> float:
    """K times the smallest fraction of pulls any arm gets, averaged over runs (eq. ``min-frac``).

    1 means perfectly uniform pulls; 0 means some arm was never tried.
    """
    K = traj.n_arms
    counts = np.stack([(traj.actions == a).sum(1) for a in range(K)], 1)  # (N, K)
    return float((K * counts.min(1) / traj.horizon).mean())


def best_arm_rate(actions: np.ndarray, means: np.ndarray) -> float:
    """Fraction of runs whose chosen arm ``actions`` (N,) is the best one."""
    return float((np.asarray(actions) == np.asarray(means).argmax(1)).mean())


def compare_baselines(n_runs: int = 500, n_arms: int = 5, horizon: int = 50,
                      kind: str = "gaussian", noise: float = 0.3, seed: int = 0
                      ) -> dict[str, Trajectory]:
    """Random, greedy, UCB and Thompson sampling on the same sampled bandits."""
    policies = {"random": random_policy, "greedy": greedy_policy,
                "ucb": make_ucb(1.0, noise if kind == "gaussian" else 0.5),
                "thompson": make_thompson(kind, noise)}
    out = {}
    for i, (name, policy) in enumerate(policies.items()):
        bandit = sample_bandits(n_runs, n_arms, np.random.default_rng(seed), kind, noise)
        out[name] = run_policy(bandit, policy, horizon, np.random.default_rng([seed, i]))
    return out


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
