"""Chapter 1 claims on the gridworld: VI = PI = optimal, Q-learning finds the optimal policy."""

import numpy as np
import pytest

from minimal.core.tabular import (
    optimal_advantage,
    policy_evaluation,
    policy_iteration,
    q_learning,
    value_iteration,
)
from minimal.worlds.gridworld import ACTIONS, GridWorld

CASES = [("bridge", 0.0, 0.9), ("bridge", 0.2, 0.95), ("delivery", 0.1, 0.9), ("cliff", 0.3, 0.8)]


@pytest.mark.parametrize("layout,slip,gamma", CASES)
def test_value_and_policy_iteration_agree_and_are_optimal(layout, slip, gamma):
    m = GridWorld(layout, slip=slip).model()
    vi = value_iteration(m.P, m.R, gamma, tol=1e-10)
    policy, V_pi, n_iter = policy_iteration(m.P, m.R, gamma)
    assert np.abs(V_pi - vi.V).max() < 1e-6
    # both greedy policies are optimal: their exact values equal V* (ties may differ)
    for pol in (policy, vi.policy):
        V = policy_evaluation(m.P, m.R, gamma, np.eye(4)[pol])
        assert np.abs(V - vi.V).max() < 1e-6
    # V* is a fixed point of the Bellman optimality operator (eq. bellman-optimality)
    assert np.abs((m.R + gamma * m.P @ vi.V).max(-1) - vi.V).max() < 1e-8
    assert n_iter < len(vi.residuals)  # PI needs far fewer (but costlier) iterations


def test_value_iteration_error_shrinks_by_gamma_per_sweep():
    m = GridWorld("bridge", slip=0.2).model()
    gamma = 0.9
    V_star = value_iteration(m.P, m.R, gamma, tol=1e-12).V
    V, errors = np.zeros(len(V_star)), []
    for _ in range(30):
        V = (m.R + gamma * m.P @ V).max(-1)
        errors.append(np.abs(V - V_star).max())
    assert all(b <= gamma * a + 1e-12 for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 0.1 * errors[0]


def optimal_fraction(env, Q, gamma=0.9):
    """Fraction of non-terminal states where the greedy action of Q is optimal (A* = 0)."""
    m = env.model()
    A_star = optimal_advantage(m.P, m.R, gamma)
    pol = Q.argmax(-1)
    return (A_star[np.arange(len(pol)), pol] > -1e-6)[~m.terminal].mean()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_q_learning_greedy_policy_is_optimal_on_the_default_gridworld(seed):
    env = GridWorld()  # the default "open" room
    m = env.model()
    V_star = value_iteration(m.P, m.R, 0.9).V
    # on-policy-ish exploration: optimal along the way it goes, most states elsewhere
    res = q_learning(env, episodes=300, gamma=0.9, alpha=0.5, epsilon=0.1, seed=seed)
    V_greedy = policy_evaluation(m.P, m.R, 0.9, np.eye(4)[res.Q.argmax(-1)])
    assert V_greedy[env.start] == pytest.approx(V_star[env.start], abs=1e-6)
    assert res.Q[env.start].max() == pytest.approx(V_star[env.start], abs=0.05)
    assert optimal_fraction(env, res.Q) >= 0.9
    # off-policy: a uniformly random behaviour policy still teaches the optimal greedy policy
    rand = q_learning(env, episodes=500, gamma=0.9, alpha=0.5, epsilon=1.0, seed=seed)
    assert optimal_fraction(env, rand.Q) == 1.0


@pytest.mark.parametrize("gamma", [0.8, 0.9, 0.95])
def test_open_room_goal_is_avoided_below_minus_gamma_over_one_minus_gamma(gamma):
    # exercise rl-ex-open-room: the goal paying -1 + g is never reached iff g < -gamma / (1 - gamma)
    threshold, never = -gamma / (1 - gamma), -1 / (1 - gamma)
    for g, avoided in ((threshold + 0.1, False), (threshold - 0.1, True)):
        room = GridWorld(cell_rewards={"G": g})
        V = value_iteration(room.model().P, room.model().R, gamma, tol=1e-10).V[room.start]
        if avoided:
            assert V == pytest.approx(never, abs=1e-6)
        else:
            assert V > never + 1e-3


@pytest.mark.parametrize("slip,gamma,action", [(0.0, 0.95, "down"), (0.2, 0.95, "down"),
                                                (0.2, 0.7, "left")])
def test_the_cell_left_of_the_pit_turns_away_only_at_the_lower_discount(slip, gamma, action):
    # fig-rl-values: slip alone keeps the route (measured V = 1.32, -2.88); discount 0.7 turns it
    world = GridWorld("bridge", slip=slip)
    res = value_iteration(world.model().P, world.model().R, gamma)
    assert ACTIONS[res.policy[world.index[(2, 1)]]] == action
