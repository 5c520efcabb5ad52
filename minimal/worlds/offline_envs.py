"""Offline data where a high return can be luck: a Bernoulli bandit and slippery FrozenLake.

Chapter "Representations and offline RL", section "Return conditioning".  Two
environments, each with a fixed *behaviour policy* that wrote an offline dataset:

* :class:`BernoulliBandit`, the tabular setting of the Dichotomy-of-Control paper
  (Yang et al., 2023): two arms with success probabilities ``success`` (the
  "gamble" arm 0 pays rarely, arm 1 often) and a behaviour policy that mostly
  pulls the gamble.  Most returns of 1 in the data then came from luck
  (Eq. ``luck-posterior``).
* :class:`FrozenLake`, gymnasium's 4x4 ``FrozenLake-v1`` with slippery ice (the
  intended move happens with probability 1/3).  We read its transition table
  once and simulate it with NumPy, so that a policy's return can be computed
  *exactly* by dynamic programming (:meth:`FrozenLake.policy_value`) instead of
  estimated from noisy rollouts.

Both produce a :class:`Steps` table: one row per time step with the state, the
action, and the return-to-go ``G`` (the sum of the rewards from that step to the
end of the episode, Eq. ``offline-return-to-go``).  Return-conditioned learners
(:mod:`minimal.return_conditioning`) and DoC (:mod:`minimal.dichotomy_of_control`) train on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------- data table
@dataclass
class Steps:
    """An offline dataset flattened to steps.  All arrays have length N (steps).

    ``state``, ``action``: integers; ``G``: return-to-go (an integer here, since
    both environments pay 0 or 1 per episode); ``episode``: which trajectory the
    step came from; ``n_states``, ``n_actions``: sizes of the tables.
    """

    state: np.ndarray
    action: np.ndarray
    G: np.ndarray
    episode: np.ndarray
    n_states: int
    n_actions: int

    def __post_init__(self):
        n = len(self.state)
        for name in ("action", "G", "episode"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Steps.{name} has length {len(getattr(self, name))}, "
                                 f"state has {n}")
        if n == 0:
            raise ValueError("Steps: the dataset is empty")
        if self.state.min() < 0 or self.state.max() >= self.n_states:
            raise ValueError(f"Steps.state must lie in [0, {self.n_states}), "
                             f"got [{self.state.min()}, {self.state.max()}]")
        if self.action.min() < 0 or self.action.max() >= self.n_actions:
            raise ValueError(f"Steps.action must lie in [0, {self.n_actions}), "
                             f"got [{self.action.min()}, {self.action.max()}]")
        if self.G.min() < 0:
            raise ValueError(f"Steps.G must be non-negative integers, got min {self.G.min()}")

    def __len__(self) -> int:
        return len(self.state)

    @property
    def n_returns(self) -> int:
        """Number of distinct return values the tables need (0 .. max G)."""
        return int(self.G.max()) + 1

    @property
    def n_episodes(self) -> int:
        return int(self.episode.max()) + 1

    def episode_returns(self) -> np.ndarray:
        """The return of each episode: G at its first step."""
        first = np.r_[True, self.episode[1:] != self.episode[:-1]]
        return self.G[first]


def _check_probs(p, name: str, n: int | None = None) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or (n is not None and len(p) != n):
        raise ValueError(f"{name} must be a vector of {n or 'k'} probabilities, "
                         f"got shape {p.shape}")
    if (p < 0).any() or (p > 1).any():
        raise ValueError(f"{name} must lie in [0, 1], got {p.tolist()}")
    return p


# ------------------------------------------------------------------- bandit
class BernoulliBandit:
    """Arm ``a`` pays reward 1 with probability ``success[a]``, else 0.  One step per episode."""

    def __init__(self, success=(0.1, 0.9)):
        self.success = _check_probs(success, "success")
        if len(self.success) < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got {len(self.success)}")
        self.n_actions = len(self.success)

    def pull(self, arms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rewards (0/1) for an array of arm indices."""
        arms = np.asarray(arms)
        if arms.min() < 0 or arms.max() >= self.n_actions:
            raise ValueError(f"arm index out of range [0, {self.n_actions}): "
                             f"{arms.min()}..{arms.max()}")
        return (rng.random(arms.shape) < self.success[arms]).astype(np.int64)

    def policy_value(self, probs: np.ndarray) -> float:
        """Exact expected reward of a policy that pulls arm a with probability ``probs[a]``."""
        probs = _check_probs(probs, "probs", self.n_actions)
        return float(probs @ self.success)


def make_bandit_dataset(n: int = 1000, success=(0.1, 0.9), behaviour=(0.95, 0.05),
                        seed: int = 0) -> tuple[BernoulliBandit, Steps]:
    """``n`` one-step episodes: the behaviour policy picks an arm, the bandit pays 0 or 1."""
    if n <= 0:
        raise ValueError(f"n (episodes) must be positive, got {n}")
    bandit = BernoulliBandit(success)
    behaviour = _check_probs(behaviour, "behaviour", bandit.n_actions)
    if not np.isclose(behaviour.sum(), 1.0):
        raise ValueError(f"behaviour must sum to 1, got {behaviour.sum():.3f}")
    rng = np.random.default_rng(seed)
    action = rng.choice(bandit.n_actions, size=n, p=behaviour)
    reward = bandit.pull(action, rng)
    steps = Steps(state=np.zeros(n, dtype=np.int64), action=action, G=reward,
                  episode=np.arange(n), n_states=1, n_actions=bandit.n_actions)
    return bandit, steps


def luck_posterior(success, behaviour) -> np.ndarray:
    """P(arm = a | reward = 1) under the behaviour policy (Eq. ``luck-posterior``).

    By Bayes' rule this is ``behaviour[a] * success[a]`` normalised over arms:
    the arm a return-conditioned policy imitates when asked for reward 1.
    """
    success, behaviour = np.asarray(success, float), np.asarray(behaviour, float)
    joint = behaviour * success
    if joint.sum() == 0:
        raise ValueError("no arm ever pays under this behaviour policy")
    return joint / joint.sum()


# --------------------------------------------------------------- FrozenLake
class FrozenLake:
    """Slippery 4x4 FrozenLake as tables: ``P[s, a, s']``, ``R[s, a, s']``, ``done[s]``.

    Built from gymnasium's ``FrozenLake-v1`` (no network needed).  Reward 1 on
    reaching the goal; holes and the goal end the episode; at most ``horizon``
    steps.  Actions: 0 left, 1 down, 2 right, 3 up.
    """

    def __init__(self, slippery: bool = True, horizon: int = 100):
        import gymnasium as gym  # imported here: only this class needs it

        if horizon <= 0:
            raise ValueError(f"horizon must be positive, got {horizon}")
        env = gym.make("FrozenLake-v1", is_slippery=slippery)
        table = env.unwrapped.P
        self.desc = env.unwrapped.desc.astype(str)
        env.close()
        self.n_states, self.n_actions, self.horizon = len(table), 4, horizon
        self.P = np.zeros((self.n_states, 4, self.n_states))
        self.R = np.zeros((self.n_states, 4, self.n_states))
        for s, row in table.items():
            for a, outcomes in row.items():
                for prob, s2, reward, _ in outcomes:
                    self.P[s, a, s2] += prob
                    self.R[s, a, s2] = reward
        flat = self.desc.ravel()
        self.done = np.isin(flat, ["H", "G"])  # terminal states
        self.start = int(np.flatnonzero(flat == "S")[0])

    def _check_policy(self, pi: np.ndarray) -> np.ndarray:
        pi = np.asarray(pi, dtype=float)
        if pi.shape != (self.n_states, self.n_actions):
            raise ValueError(f"policy table must have shape ({self.n_states}, {self.n_actions}), "
                             f"got {pi.shape}")
        if not np.allclose(pi.sum(1), 1.0):
            raise ValueError("each row of the policy table must sum to 1")
        return pi

    def policy_q(self, pi: np.ndarray) -> np.ndarray:
        """Exact ``Q^pi(s, a)`` with ``horizon`` steps to go, an ``(S, A)`` table.

        Finite-horizon policy evaluation: ``V_h(s) = sum_a pi(a|s) sum_s' P(s'|s,a)
        [R(s,a,s') + V_{h-1}(s')]`` with ``V = 0`` at terminal states and ``V_0 = 0``;
        the table returned is ``Q_H(s, a) = sum_s' P(s'|s,a) [R(s,a,s') + V_{H-1}(s')]``.
        """
        pi = self._check_policy(pi)
        V = np.zeros(self.n_states)
        for _ in range(self.horizon):
            Q = (self.P * (self.R + V[None, None, :])).sum(-1)  # (S, A)
            V = np.where(self.done, 0.0, (pi * Q).sum(-1))      # (S,)
        return Q

    def policy_value(self, pi: np.ndarray) -> float:
        """Exact expected return from the start state of the stationary policy ``pi[s, a]``
        (the start state is not terminal, so it is ``sum_a pi(a|s0) Q^pi(s0, a)``)."""
        Q = self.policy_q(pi)
        return float((np.asarray(pi, dtype=float)[self.start] * Q[self.start]).sum())

    def optimal_policy(self) -> np.ndarray:
        """Greedy policy of finite-horizon value iteration (deterministic, as a table)."""
        V = np.zeros(self.n_states)
        for _ in range(self.horizon):
            Q = (self.P * (self.R + V[None, None, :])).sum(-1)
            V = np.where(self.done, 0.0, Q.max(-1))
        return np.eye(self.n_actions)[Q.argmax(-1)]

    def collect(self, pi: np.ndarray, n_episodes: int, seed: int = 0) -> Steps:
        """Roll out ``pi`` for ``n_episodes`` episodes; return every step with its return-to-go."""
        pi = self._check_policy(pi)
        if n_episodes <= 0:
            raise ValueError(f"n_episodes must be positive, got {n_episodes}")
        rng = np.random.default_rng(seed)
        cum_P = self.P.cumsum(-1)
        cum_pi = pi.cumsum(-1)
        S, A, G, E = [], [], [], []
        for ep in range(n_episodes):
            s, rewards = self.start, []
            for _ in range(self.horizon):
                a = min(int(np.searchsorted(cum_pi[s], rng.random(), side="right")), 3)
                s2 = min(int(np.searchsorted(cum_P[s, a], rng.random(), side="right")),
                         self.n_states - 1)
                S.append(s), A.append(a), E.append(ep)
                rewards.append(self.R[s, a, s2])
                s = s2
                if self.done[s]:
                    break
            G.extend(np.cumsum(rewards[::-1])[::-1])  # Eq. offline-return-to-go
        return Steps(state=np.array(S), action=np.array(A), G=np.rint(G).astype(np.int64),
                     episode=np.array(E), n_states=self.n_states, n_actions=self.n_actions)


def frozenlake_behaviour(lake: FrozenLake, p_random: float = 0.5) -> np.ndarray:
    """The behaviour policy for the FrozenLake dataset: with probability ``p_random``
    a uniformly random action, otherwise the optimal one."""
    if not 0 <= p_random <= 1:
        raise ValueError(f"p_random must lie in [0, 1], got {p_random}")
    return (1 - p_random) * lake.optimal_policy() + p_random / lake.n_actions


def make_frozenlake_dataset(n_episodes: int = 300, p_random: float = 0.5, seed: int = 0,
                            horizon: int = 100) -> tuple[FrozenLake, Steps]:
    """Offline FrozenLake trajectories from :func:`frozenlake_behaviour`."""
    lake = FrozenLake(slippery=True, horizon=horizon)
    return lake, lake.collect(frozenlake_behaviour(lake, p_random), n_episodes, seed)


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
