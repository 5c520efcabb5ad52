"""Tabular dynamic programming and Q-learning on a known or sampled MDP (chapter 1).

All functions take the MDP as arrays ``P[s, a, s']`` (S, A, S) and ``R[s, a]``
(S, A), e.g. from :meth:`minimal.worlds.gridworld.GridWorld.model`, and a discount
``gamma`` in [0, 1).  Equation labels refer to chapter 1:

* :func:`policy_evaluation` solves the Bellman expectation equation
  (eq. ``bellman-expectation``) exactly, V = (I - gamma P_pi)^{-1} R_pi;
* :func:`value_iteration` iterates the Bellman optimality operator
  (eq. ``bellman-optimality``), a gamma-contraction, until the residual is
  below ``tol``;
* :func:`policy_iteration` alternates exact evaluation and greedy improvement
  (eq. ``policy-improvement``) and stops when the policy is stable;
* :func:`q_learning` learns Q* from samples with the update of eq.
  ``q-learning`` and epsilon-greedy exploration;
* :func:`optimal_advantage` returns A*(s, a) = Q*(s, a) - V*(s), which the
  regret model of chapter 4 uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def check_mdp(P: np.ndarray, R: np.ndarray, gamma: float) -> None:
    """Raise ValueError naming the problem if (P, R, gamma) is not a valid finite MDP."""
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
    if R.shape != P.shape[:2]:
        raise ValueError(f"R must have shape (S, A) = {P.shape[:2]}, got {R.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(-1), 1.0):
        raise ValueError("each P[s, a, :] must be a probability distribution")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")


def q_from_v(P, R, V, gamma):
    """One-step lookahead: Q(s, a) = R(s, a) + gamma * sum_s' P(s'|s, a) V(s')."""
    return R + gamma * P @ V  # (S, A)


def policy_evaluation(P, R, gamma, pi):
    """V^pi for a stochastic policy ``pi`` (S, A) by solving the linear Bellman equation."""
    check_mdp(P, R, gamma)
    if pi.shape != R.shape or not np.allclose(pi.sum(-1), 1.0):
        raise ValueError(f"pi must be (S, A) = {R.shape} with rows summing to 1")
    P_pi = np.einsum("sa,sat->st", pi, P)  # (S, S) state-to-state under pi
    R_pi = (pi * R).sum(-1)  # (S,)
    return np.linalg.solve(np.eye(len(R)) - gamma * P_pi, R_pi)


def greedy(Q):
    """Deterministic greedy policy as action indices (S,); ties go to the lowest action."""
    return Q.argmax(-1)


def one_hot_policy(actions, n_actions):
    """(S,) action indices -> (S, A) policy matrix."""
    return np.eye(n_actions)[actions]


@dataclass
class VIResult:
    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    residuals: list[float] = field(default_factory=list)  # ||T V_k - V_k||_inf per sweep


def value_iteration(P, R, gamma, tol=1e-8, max_iter=10_000) -> VIResult:
    """Iterate V <- max_a [R + gamma P V] (eq. ``bellman-optimality``) to a fixed point."""
    check_mdp(P, R, gamma)
    V = np.zeros(P.shape[0])
    residuals = []
    for _ in range(max_iter):
        Q = q_from_v(P, R, V, gamma)
        V_new = Q.max(-1)
        residuals.append(float(np.abs(V_new - V).max()))
        V = V_new
        if residuals[-1] < tol:
            break
    else:
        raise RuntimeError(f"value iteration did not reach tol={tol} in {max_iter} sweeps")
    Q = q_from_v(P, R, V, gamma)
    return VIResult(V, Q, greedy(Q), residuals)


def policy_iteration(P, R, gamma, max_iter=1_000):
    """Exact evaluation + greedy improvement until stable; returns (policy, V, n_iterations)."""
    check_mdp(P, R, gamma)
    S, A = R.shape
    policy = np.zeros(S, dtype=int)
    for it in range(1, max_iter + 1):
        V = policy_evaluation(P, R, gamma, one_hot_policy(policy, A))
        Q = q_from_v(P, R, V, gamma)
        # keep the current action unless another is strictly better (avoids cycling on ties)
        best = Q.max(-1)
        improved = np.where(Q[np.arange(S), policy] >= best - 1e-10, policy, greedy(Q))
        if np.array_equal(improved, policy):
            return policy, V, it
        policy = improved
    raise RuntimeError(f"policy iteration did not converge in {max_iter} iterations")


def optimal_advantage(P, R, gamma):
    """A*(s, a) = Q*(s, a) - V*(s) <= 0, zero exactly for optimal actions."""
    vi = value_iteration(P, R, gamma)
    return vi.Q - vi.V[:, None]


@dataclass
class QLearningResult:
    Q: np.ndarray
    returns: list[float]  # undiscounted return of each training episode


def q_learning(env, episodes: int, gamma: float, alpha: float = 0.5, epsilon: float = 0.1,
               seed: int = 0) -> QLearningResult:
    """Tabular Q-learning (eq. ``q-learning``) with epsilon-greedy exploration.

    Q(s, a) <- Q(s, a) + alpha [r + gamma max_a' Q(s', a') - Q(s, a)],
    with the bootstrap term dropped when s' is terminal.
    """
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    rng = np.random.default_rng(seed)
    Q = np.zeros((env.observation_space.n, env.action_space.n))
    returns = []
    for episode in range(episodes):
        s, _ = env.reset(seed=seed * 100_003 + episode)
        total, done = 0.0, False
        while not done:
            if rng.random() < epsilon:
                a = int(rng.integers(env.action_space.n))
            else:  # greedy with random tie-breaking, so an all-zero Q still explores
                a = int(rng.choice(np.flatnonzero(Q[s] == Q[s].max())))
            s2, r, terminated, truncated, _ = env.step(a)
            target = r if terminated else r + gamma * Q[s2].max()
            Q[s, a] += alpha * (target - Q[s, a])
            total += r
            s, done = s2, terminated or truncated
        returns.append(total)
    return QLearningResult(Q, returns)


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
