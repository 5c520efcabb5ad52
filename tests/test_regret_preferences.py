"""Chapter 4: segment sampling, the two preference models, and the identifiability counterexample."""

import numpy as np
import pytest
import torch

from minimal.preferences import (
    Preferences,
    cells_view,
    constant_shift_demo,
    make_mdp,
    make_preferences,
    partial_return,
    preference_probability,
    random_mdp,
    sample_segments,
    segment_from_moves,
    summed_advantage,
)
from minimal.reward_learning import PreferenceBatch, optimal_advantage_torch

W = [-1.0, 10.0, -10.0, -3.0]  # step, goal, pit, mud


def test_linear_reward_is_the_gridworld_reward_and_segments_are_consistent():
    mdp = random_mdp(np.random.default_rng(0))
    assert np.allclose(mdp.reward(), mdp.env.model().R)
    seg = sample_segments(mdp, 200, 4, np.random.default_rng(1))
    assert seg.states.shape == (200, 5) and seg.actions.shape == (200, 4)
    # partial return = the rewards the environment pays along the segment (deterministic grid)
    R = mdp.reward()
    paid = (R[seg.states[:, :-1], seg.actions] * seg.live).sum(1)
    assert np.allclose(partial_return(seg, mdp.w), paid)
    # once terminal, always terminal
    assert not np.any(seg.live[:, 1:] & ~seg.live[:, :-1])
    # cell features give the same partial return with w[s'] = w . phi(s')
    cells = cells_view(mdp)
    assert np.allclose(partial_return(seg.recount(cells.Phi), cells.w), paid)


def test_regret_of_an_optimal_segment_is_zero_and_figure_one_pair():
    """Equal partial returns, but only one segment is optimal: the regret model prefers it."""
    mdp = make_mdp("open", [-1, 10, -10, -3])
    toward = segment_from_moves(mdp, (0, 0), "RR")  # two optimal steps toward G
    away = segment_from_moves(mdp, (2, 2), "UL")  # two steps away from G
    assert partial_return(toward, mdp.w)[0] == partial_return(away, mdp.w)[0] == -2
    A = mdp.advantage()
    assert summed_advantage(toward, A)[0] == pytest.approx(0, abs=1e-6)
    assert summed_advantage(away, A)[0] < -3
    assert preference_probability(mdp, toward, away, "partial_return")[0] == pytest.approx(0.5)
    assert preference_probability(mdp, toward, away, "regret")[0] > 0.95


def test_torch_advantage_matches_numpy_and_has_the_right_gradient():
    rng = np.random.default_rng(3)
    mdps = [random_mdp(rng) for _ in range(3)]
    data = [make_preferences(m, 5, "regret", rng) for m in mdps]
    b = PreferenceBatch.stack(mdps, data)
    w = torch.tensor(np.stack([m.w for m in mdps]), dtype=torch.float64, requires_grad=True)
    A = optimal_advantage_torch(b.P.double(), b.Phi.double(), b.terminal, w, 0.9, 200)
    for i, m in enumerate(mdps):
        assert np.allclose(A[i].detach().numpy(), m.advantage(), atol=1e-5)
    # finite differences of sum A*_w (the optimal policy does not change for a tiny step)
    A.sum().backward()
    eps, e = 1e-4, torch.zeros_like(w)
    e[0, 3] = eps
    A2 = optimal_advantage_torch(b.P.double(), b.Phi.double(), b.terminal, w.detach() + e, 0.9, 200)
    fd = (A2.sum() - A.sum()).item() / eps
    assert w.grad[0, 3].item() == pytest.approx(fd, rel=1e-3, abs=1e-6)


def test_identifiability_counterexample_constant_shift():
    """Partial return cannot tell w from w + c*step on mid-episode segments; regret can."""
    demo = constant_shift_demo("delivery", W, shift=3.0, n=1000)
    assert demo.n_pairs > 500
    assert demo.max_gap_partial_return < 1e-9
    assert demo.max_gap_regret > 0.5 and demo.mean_gap_regret > 0.1
    assert demo.score_of_b_policy_under_a < 0.5  # and the difference matters for behaviour
    # worked by hand in the chapter: the cell left of G in the delivery layout
    a, b = make_mdp("delivery", W), make_mdp("delivery", np.add(W, [3, 0, 0, 0]))
    s = a.env.index[(2, 6)]
    assert a.advantage()[s, 1] == pytest.approx(0, abs=1e-6)  # entering G is optimal under w_a
    assert b.advantage()[s, 1] == pytest.approx(-8, abs=1e-4)  # 12 - 20 under w_b


def test_noiseless_labels_follow_the_sign():
    mdp = random_mdp(np.random.default_rng(5))
    d = make_preferences(mdp, 300, "regret", np.random.default_rng(6), noiseless=True)
    p = preference_probability(mdp, d.seg1, d.seg2, "regret")
    decided = np.abs(p - 0.5) > 1e-9
    assert np.array_equal(d.y[decided], (p[decided] > 0.5).astype(float))
    assert isinstance(d, Preferences) and len(d) == 300


def test_bad_input_is_named():
    mdp = make_mdp("open", W)
    with pytest.raises(ValueError, match="one weight per feature"):
        make_mdp("open", [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown preference model 'reward'"):
        preference_probability(mdp, *(sample_segments(mdp, 2, 2, np.random.default_rng(0)),) * 2,
                               model="reward")
    with pytest.raises(ValueError, match="need n > 0 and length > 0"):
        sample_segments(mdp, 0, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="moves must be a non-empty string"):
        segment_from_moves(mdp, (0, 0), "RX")
    with pytest.raises(ValueError, match="do not fit"):
        random_mdp(np.random.default_rng(0), size=3, n_pits=5, n_mud=5)
    with pytest.raises(ValueError, match="policy must be"):
        mdp.scaled_return(np.zeros(3, dtype=int))


@pytest.mark.unit
def test_noiseless_counterexample_layout():
    # the solution of ch4-ex-noiseless: m = 3.5 and m = 4.5 give the same noiseless partial-return
    # answers on every pair of segments of at most 3 steps, (n steps, u of them into mud) ...
    import itertools

    from minimal.core.tabular import value_iteration

    segs = [(n, u) for n in range(1, 4) for u in range(n + 1)]

    def answers(m):
        return [np.sign((n2 + m * u2) - (n1 + m * u1))
                for (n1, u1), (n2, u2) in itertools.product(segs, segs)]

    assert len(segs) ** 2 == 81 and answers(3.5) == answers(4.5)
    # ... but different optimal policies in the layout SoG / .o. / ... at gamma = 0.99 (right into
    # the mud against down and around), and the same one at gamma = 0.9 (threshold 2.79)
    first_move = {}
    for gamma in (0.99, 0.9):
        for m in (3.5, 4.5):
            grid = make_mdp(["SoG", ".o.", "..."], [-1.0, 0.0, 0.0, -m], gamma=gamma)
            vi = value_iteration(grid.P, grid.reward(), grid.gamma)
            first_move[gamma, m] = "URDL"[vi.policy[grid.env.index[(0, 0)]]]
    assert first_move == {(0.99, 3.5): "R", (0.99, 4.5): "D", (0.9, 3.5): "D", (0.9, 4.5): "D"}
