"""Multi-armed bandits with Gaussian or Bernoulli arms, vectorized over runs (pure NumPy).

Chapter "In-context decision making", section "Bandits and regret": the world of
chapter 6.  :class:`Bandit` holds ``N`` independent bandits (arm means (N, K)) and
pulls one arm per run; :func:`sample_bandits` draws their means uniformly.  The
algorithms that play them, and the regret bookkeeping, are in
:mod:`minimal.bandit_algorithms`; the transformers that learn to play them in
:mod:`minimal.dpt` and :mod:`minimal.algorithm_distillation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("gaussian", "bernoulli")


# -------------------------------------------------------------- environments
@dataclass
class Bandit:
    """``N`` independent K-armed bandits with arm means ``means`` (N, K).

    ``kind="gaussian"``: reward ~ Normal(mean, ``noise``^2).
    ``kind="bernoulli"``: reward ~ Bernoulli(mean); means must lie in [0, 1].
    """

    means: np.ndarray
    kind: str = "gaussian"
    noise: float = 0.3

    def __post_init__(self):
        self.means = np.asarray(self.means, dtype=float)
        if self.means.ndim != 2 or self.means.shape[1] < 2:
            raise ValueError(f"Bandit means must have shape (N, K) with K >= 2 arms, "
                             f"got {self.means.shape}")
        if self.kind not in KINDS:
            raise ValueError(f"Bandit kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "bernoulli" and not ((self.means >= 0) & (self.means <= 1)).all():
            raise ValueError("Bernoulli arm means must lie in [0, 1]")
        if self.noise < 0:
            raise ValueError(f"Bandit noise must be >= 0, got {self.noise}")

    @property
    def n_runs(self) -> int:
        return self.means.shape[0]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    @property
    def best_arm(self) -> np.ndarray:
        return self.means.argmax(1)  # (N,)

    def pull(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One reward per run for ``actions`` (N,) of arm indices; returns (N,)."""
        actions = np.asarray(actions)
        if actions.shape != (self.n_runs,):
            raise ValueError(f"expected one action per run, shape ({self.n_runs},), "
                             f"got {actions.shape}")
        if actions.min() < 0 or actions.max() >= self.n_arms:
            raise ValueError(f"actions must be arm indices in [0, {self.n_arms}), "
                             f"got range [{actions.min()}, {actions.max()}]")
        mu = self.means[np.arange(self.n_runs), actions]  # (N,)
        if self.kind == "bernoulli":
            return (rng.random(self.n_runs) < mu).astype(float)
        return mu + self.noise * rng.standard_normal(self.n_runs)


def sample_bandits(n_runs: int, n_arms: int, rng: np.random.Generator,
                   kind: str = "gaussian", noise: float = 0.3) -> Bandit:
    """``n_runs`` bandits whose arm means are drawn uniformly in [0, 1] (the DPT setting)."""
    if n_runs < 1:
        raise ValueError(f"n_runs must be >= 1, got {n_runs}")
    if n_arms < 2:
        raise ValueError(f"a bandit needs at least 2 arms, got n_arms = {n_arms}")
    return Bandit(rng.random((n_runs, n_arms)), kind=kind, noise=noise)


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
