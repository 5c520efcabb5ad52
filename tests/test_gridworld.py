"""The gridworld and the tabular algorithms of chapter 1."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from minimal.core.tabular import (
    optimal_advantage,
    policy_evaluation,
    policy_iteration,
    q_learning,
    value_iteration,
)
from minimal.worlds.gridworld import LAYOUTS, GridWorld


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_model_is_a_valid_mdp_and_vi_agrees_with_pi(layout):
    env = GridWorld(layout, slip=0.2)
    m = env.model()
    assert np.allclose(m.P.sum(-1), 1) and m.P.shape == (env.n_states, 4, env.n_states)
    vi = value_iteration(m.P, m.R, 0.9)
    policy, V, _ = policy_iteration(m.P, m.R, 0.9)
    assert np.allclose(V, vi.V, atol=1e-6)
    # the Bellman residual shrinks at least geometrically at rate gamma (contraction)
    r = vi.residuals
    assert all(b <= 0.9 * a + 1e-12 for a, b in zip(r, r[1:]))
    A = optimal_advantage(m.P, m.R, 0.9)
    assert A.max() <= 1e-6 and np.allclose(A.max(-1), 0, atol=1e-6)


def test_gymnasium_api():
    env = GridWorld("open", slip=0.1)
    check_env(env, skip_render_check=True)
    assert env.image().shape == (5 * 24, 5 * 24, 3)


def test_open_room_optimal_value_is_the_discounted_shortest_path():
    env = GridWorld("open")  # 8 steps to G: seven steps of -1, then -1 + 10
    vi = value_iteration(env.model().P, env.model().R, 0.9)
    expected = sum(-0.9 ** k for k in range(7)) + 0.9 ** 7 * 9
    assert vi.V[env.start] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_learning_finds_the_optimal_path(seed):
    env = GridWorld("open")
    res = q_learning(env, episodes=300, gamma=0.9, alpha=0.5, epsilon=0.1, seed=seed)
    vi = value_iteration(env.model().P, env.model().R, 0.9)
    greedy_value = policy_evaluation(env.model().P, env.model().R, 0.9, np.eye(4)[res.Q.argmax(-1)])
    assert greedy_value[env.start] == pytest.approx(vi.V[env.start], abs=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown layout 'maze'"):
        GridWorld("maze")
    with pytest.raises(ValueError, match=r"slip must be in \[0, 1\)"):
        GridWorld(slip=1.0)
    with pytest.raises(ValueError, match="unknown cell characters"):
        GridWorld(["S.?G"])
    with pytest.raises(ValueError, match="exactly one start"):
        GridWorld(["..G"])
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\)"):
        value_iteration(GridWorld().model().P, GridWorld().model().R, 1.0)
    with pytest.raises(ValueError, match="action must be an int"):
        env = GridWorld()
        env.reset(seed=0)
        env.step(7)
