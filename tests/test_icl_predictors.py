"""Urn tasks and the exact Bayesian predictors M and G (no training, fast)."""

import numpy as np
import pytest
import torch

from minimal.worlds.icl_tasks import (
    expected_loss,
    generalizing_predictor,
    kl,
    memorizing_predictor,
    prefix_counts,
    sample_sequences,
    sample_tasks,
)


def test_predictors_are_distributions_and_match_hand_computation():
    tasks = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    x = torch.tensor([[0, 0, 1]])
    M = memorizing_predictor(x, tasks)  # (1, 3, 2)
    G = generalizing_predictor(x, 2, 1.0)
    assert torch.allclose(M.sum(-1), torch.ones(1, 3, dtype=torch.float64))
    # after "0": w ∝ (0.5, 0.9)
    w = torch.tensor([0.5, 0.9]) / 1.4
    assert M[0, 0, 0].item() == pytest.approx(float(w[0] * 0.5 + w[1] * 0.9))
    # Laplace's rule after "0 0 1": (2 + 1) / (3 + 2)
    assert G[0, 2, 0].item() == pytest.approx(3 / 5)


def test_memorizing_equals_true_urn_when_d_is_one_and_m_beats_g_in_distribution():
    tasks = sample_tasks(1, 4, 1.0, seed=0)
    x, _ = sample_sequences(tasks, 8, 6, torch.Generator().manual_seed(0))
    assert torch.allclose(memorizing_predictor(x, tasks), tasks[0].expand(8, 6, 4))
    for seed in range(3):
        tasks = sample_tasks(4, 4, 1.0, seed=seed)
        x, tid = sample_sequences(tasks, 256, 12, torch.Generator().manual_seed(seed))
        lm = expected_loss(memorizing_predictor(x, tasks), tasks[tid])
        lg = expected_loss(generalizing_predictor(x, 4, 1.0), tasks[tid])
        assert lm < lg - 0.02  # M is Bayes-optimal on the training mixture


def test_m_approaches_g_as_diversity_grows():
    def gap(D, seed):
        th = sample_tasks(D, 4, 1.0, seed)
        xs, _ = sample_sequences(th, 256, 12, torch.Generator().manual_seed(seed))
        return float(kl(memorizing_predictor(xs, th), generalizing_predictor(xs, 4, 1.0)).mean())

    for seed in range(3):
        gaps = [gap(D, seed) for D in (2, 16, 256)]
        assert gaps[0] > 2 * gaps[1] > 4 * gaps[2]


def test_excess_loss_on_the_training_mixture_is_the_distance_to_m():
    """Eq. icl-excess-loss: L(P) - L(M) = d(M, P) on contexts from the training urns."""
    for seed in range(3):
        tasks = sample_tasks(8, 4, 1.0, seed=seed)
        x, tid = sample_sequences(tasks, 20000, 12, torch.Generator().manual_seed(seed))
        M, G = memorizing_predictor(x, tasks), generalizing_predictor(x, 4, 1.0)
        for P in (G, 0.5 * M + 0.5 * G):
            excess = expected_loss(P, tasks[tid]) - expected_loss(M, tasks[tid])
            # measured ratio excess / d(M, P): 0.99-1.02 (20000 contexts)
            assert excess == pytest.approx(float(kl(M, P).mean()), rel=0.05)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="D \\(number of training tasks\\)"):
        sample_tasks(0, 4, 1.0, seed=0)
    with pytest.raises(ValueError, match="K \\(alphabet size\\) must be at least 2"):
        sample_tasks(3, 1, 1.0, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        sample_tasks(3, 4, -1.0, seed=0)
    with pytest.raises(ValueError, match="symbols must lie in 0..3"):
        prefix_counts(torch.tensor([[0, 4]]), 4)
    with pytest.raises(ValueError, match="equal shapes"):
        kl(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="tasks must have shape"):
        sample_sequences(torch.ones(4), 2, 3, torch.Generator())
    assert np.isfinite(float(kl(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))))
