"""The chapter's claims about memorizing vs generalizing, across 3 seeds.

One grid of runs (D in {2, 8, 32}, seeds 0-2, 300 steps of the ``laptop``
preset) is shared by all claims; the notebook "Memorize or generalize?" runs
the same experiment function (:func:`minimal.icl_training.run_grid` /
``train_icl``) for 500 steps.  Margins come from the measured spread
(recorded in the comments, seeds 0/1/2).
"""

import numpy as np
import pytest

from minimal.hierarchical_bayes import (
    agreement,
    complexity_gap,
    fit_hierarchical,
    loss_gap,
    mixture_distance,
    transition_step,
)
from minimal.icl_training import run_grid

SEEDS = (0, 1, 2)
DS = (2, 8, 32)
STEPS = 300  # a run with no transition counts as transitioning at the end


@pytest.fixture(scope="module")
def grid():
    return run_grid(DS, SEEDS, steps=STEPS)


def r_at(run, step):
    return float(run.relative_distance[run.steps.index(step)])


def test_low_diversity_ends_at_m_and_high_diversity_does_not(grid):
    for s in SEEDS:
        final = {D: float(grid[(D, s)].relative_distance[-1]) for D in DS}
        # measured r at step 300: D=2 .94/.96/.92, D=8 .30/.55/.70, D=32 .07/.16/.28
        assert final[2] > 0.85, (s, final)
        assert final[8] > 0.2, (s, final)
        assert final[32] < 0.4, (s, final)
        assert final[2] > final[8] > final[32], (s, final)


def test_early_in_training_high_diversity_sits_on_the_g_side(grid):
    for s in SEEDS:
        # measured r at step 50: D=32 -.07/-.04/.11, D=2 .41/.73/.78
        assert r_at(grid[(32, s)], 50) < 0.15
        assert r_at(grid[(2, s)], 50) - r_at(grid[(32, s)], 50) > 0.3


def test_transition_comes_later_at_higher_diversity(grid):
    """Per seed, D = 32 moves to M later than D = 2; D = 8 falls between them on average.

    The per-seed order of all three (t(2) <= t(8) < t(32)) held on 9/10 development seeds but
    8/10 held-out seeds (tests/test_claims_slow.py): t(2) and t(8) are often within the
    25-step snapshot interval of each other, so the middle of the order is asserted on the
    mean over seeds, and only the well-separated ends per seed (10/10 on both ranges).
    """
    late = []
    for s in SEEDS:
        t = {D: transition_step(grid[(D, s)]) for D in DS}
        # measured: D=2 50/50/25, D=8 125/50/25, D=32 none/none/175
        late.append({D: STEPS if v is None else v for D, v in t.items()})
        assert late[-1][2] < late[-1][32], (s, t)
    mean = {D: np.mean([t[D] for t in late]) for D in DS}
    assert mean[2] < mean[8] < mean[32], mean


def test_hierarchical_model_beats_the_best_single_predictor(grid):
    r2 = []
    for s in SEEDS:
        runs = [grid[(D, s)] for D in DS]
        fit = fit_hierarchical(runs)
        score = agreement(runs, fit)
        # measured mean KL: model .0203/.0148/.0131 vs best single .0263/.0157/.0135
        # (3-23% lower); R^2 of the weight .86/.85/.65
        assert score.hierarchical < 0.99 * score.best_single, (s, score)
        assert score.hierarchical < 0.5 * score.only_G, (s, score)
        assert 0 < fit.alpha < 1.5, (s, fit)
        r2.append(score.r2_weight)
    # The weight curve's R^2 is a median claim: above 0.5 on 8/10 development and 7/10
    # held-out seeds, with a median of 0.83 and 0.80 (tests/test_claims_slow.py).
    assert np.median(r2) > 0.5, r2


def test_absolute_distances_high_diversity_is_near_neither_predictor(grid):
    """r hides the scale: at D = 32 the net stays about d(M, G) away from M, G and every mixture."""
    for s in SEEDS:
        run = grid[(32, s)]
        late = np.array(run.steps) >= 50
        nearest = np.minimum(run.d_G, run.d_M)[late].min() / run.d_MG
        mix = mixture_distance(run)[late].min() / run.d_MG
        # measured (seeds 0/1/2): nearest 1.21/1.57/1.20, mixture 1.04/1.37/1.19 (in d(M, G))
        assert nearest > 0.6, (s, nearest)
        assert mix > 0.6, (s, mix)


def test_absolute_distances_low_diversity_reaches_m_and_no_run_reaches_g(grid):
    for s in SEEDS:
        run = grid[(2, s)]
        # measured final d_M / d(M, G): 0.03/0.03/0.04
        assert run.d_M[-1] < 0.1 * run.d_MG, (s, run.d_M[-1], run.d_MG)
        for D in DS:
            run = grid[(D, s)]
            late = np.array(run.steps) >= 50
            # measured min d_G / d(M, G) from step 50: D=2 .70/.95/.87, D=8 .68/1.12/1.06,
            # D=32 1.21/1.63/1.60
            assert run.d_G[late].min() > 0.5 * run.d_MG, (D, s)


def test_fitted_complexity_prior_is_weak(grid):
    """b DeltaK is small: before any data the fitted model is undecided, not at G."""
    for s in SEEDS:
        runs = [grid[(D, s)] for D in DS]
        fit = fit_hierarchical(runs)
        w0 = [float(fit.weight(0, loss_gap(r), complexity_gap(r))) for r in runs]
        # measured b: .0070/.0014/.0030; weight on M at N = 0 for D = 2, 8, 32:
        # .49/.46/.34, .50/.49/.47, .50/.48/.43
        assert fit.b < 0.02, (s, fit)
        assert min(w0) > 0.25, (s, w0)
