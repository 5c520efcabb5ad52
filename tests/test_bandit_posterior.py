"""The exact Bayesian reference of chapter 6: the posterior over the best arm under U[0, 1] means.

``best_arm_posterior`` (eq. ``best-arm-posterior``) is checked against a brute-force
importance-sampling estimate on fixed datasets, and for calibration on datasets drawn
from the task prior; the truncated-Gaussian sampler of exact-prior Thompson sampling
(eq. ``uniform-posterior``) is checked to play each arm with that posterior probability.
"""

import numpy as np
import pytest

from minimal.bandit_algorithms import (
    best_arm_posterior,
    compare_baselines,
    history_statistics,
    make_thompson_exact,
    sample_uniform_prior_posterior,
    truncated_normal_cdf,
    uniform_prior_posterior,
)

pytestmark = pytest.mark.unit

NOISE = 0.3
COUNTS = np.array([[0, 1, 3, 10, 2], [5, 5, 0, 0, 1]], dtype=float)
MEANS = np.array([[0.5, 0.9, 0.4, 0.6, 0.7], [0.2, 0.3, 0.5, 0.5, -0.2]])  # empirical means


def importance_sampling(counts, means, noise, n_samples=400_000, seed=0):
    """P(a* = a | data) by brute force: prior draws of the means weighted by the likelihood."""
    mu = np.random.default_rng(seed).random((n_samples, counts.shape[0]))  # mu ~ U[0, 1]^K
    log_w = -(counts * (mu - means) ** 2).sum(1) / (2 * noise**2)
    w = np.exp(log_w - log_w.max())
    best = mu.argmax(1)
    return np.array([w[best == a].sum() for a in range(counts.shape[0])]) / w.sum()


def test_best_arm_posterior_matches_brute_force_importance_sampling():
    exact = best_arm_posterior(COUNTS, COUNTS * MEANS, NOISE)
    for row in range(len(COUNTS)):
        brute = importance_sampling(COUNTS[row], MEANS[row], NOISE)
        assert np.abs(exact[row] - brute).max() < 0.005, (row, exact[row], brute)
    # the two tied arms of row 1 (no data, same prior) are equally likely to be best
    assert abs(exact[1, 2] - exact[1, 3]) < 1e-9
    # a different noise level is a different posterior: the check above can fail
    assert np.abs(best_arm_posterior(COUNTS, COUNTS * MEANS, 2 * NOISE) - exact).max() > 0.05


def test_empty_dataset_gives_the_uniform_prior_and_rows_sum_to_one():
    post = best_arm_posterior(np.zeros((2, 5)), np.zeros((2, 5)), NOISE)
    assert np.allclose(post, 0.2, atol=1e-9)
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 20, (50, 5)).astype(float)
    post = best_arm_posterior(counts, counts * rng.random((50, 5)), NOISE)
    assert np.allclose(post.sum(1), 1) and (post >= 0).all()


def test_the_bayes_choice_is_calibrated_on_datasets_from_the_task_prior():
    """Over datasets drawn from the prior, argmax P is right with probability E[max P]."""
    rng = np.random.default_rng(2)
    N, K, n = 2500, 5, 10
    means = rng.random((N, K))
    actions = rng.integers(0, K, (N, n))
    rewards = np.take_along_axis(means, actions, 1) + NOISE * rng.standard_normal((N, n))
    post = best_arm_posterior(*history_statistics(actions, rewards, K), NOISE, grid=512)
    hit = post.argmax(1) == means.argmax(1)
    expected = post.max(1)
    se = np.sqrt(hit.var() / N + expected.var() / N)
    assert abs(hit.mean() - expected.mean()) < 3 * se, (hit.mean(), expected.mean(), se)
    # and the posterior is informative: far better than the prior's 1/K
    assert expected.mean() > 0.45


def test_truncated_gaussian_cdf_runs_from_0_to_1_and_matches_its_density():
    loc, scale, pulled = uniform_prior_posterior(np.array([[4.0, 1.0, 0.0]]),
                                                 np.array([[-0.4, 1.3, 0.0]]), NOISE)
    x = np.linspace(0, 1, 20001)
    F = truncated_normal_cdf(x, loc, scale, pulled)[0]  # (3, G)
    assert np.allclose(F[:, 0], 0) and np.allclose(F[:, -1], 1)
    assert (np.diff(F, axis=1) >= -1e-12).all()
    assert np.allclose(F[2], x)  # an unpulled arm keeps its U[0, 1] prior
    for arm in range(2):  # the CDF of the normalised, truncated Gaussian density
        dens = np.exp(-0.5 * ((x - loc[0, arm]) / scale[0, arm]) ** 2)
        cum = np.concatenate([[0], np.cumsum((dens[1:] + dens[:-1]) / 2)])
        assert np.abs(F[arm] - cum / cum[-1]).max() < 1e-6


def test_exact_thompson_sampling_plays_each_arm_with_its_posterior_probability():
    """Probability matching: argmax of one posterior draw is arm a with P(a* = a | data)."""
    rng = np.random.default_rng(3)
    reps = 100_000
    counts, sums = np.repeat(COUNTS[:1], reps, 0), np.repeat((COUNTS * MEANS)[:1], reps, 0)
    draws = sample_uniform_prior_posterior(counts, sums, NOISE, rng)
    assert ((draws >= 0) & (draws <= 1)).all()
    freq = np.bincount(draws.argmax(1), minlength=5) / reps
    exact = best_arm_posterior(COUNTS[:1], (COUNTS * MEANS)[:1], NOISE)[0]
    assert np.abs(freq - exact).max() < 0.006, (freq, exact)
    policy = make_thompson_exact(NOISE)
    assert np.abs(np.bincount(policy(counts, sums, 1, rng), minlength=5) / reps - exact).max() < 0.006


def test_a_posterior_far_outside_the_prior_support_stays_finite():
    """Mean -0.5 with 500 pulls: Phi underflows near 1, the mirrored bounds keep the digits."""
    counts, sums = np.array([[500.0, 500.0]]), np.array([[-250.0, 0.0]])
    draws = sample_uniform_prior_posterior(np.repeat(counts, 1000, 0), np.repeat(sums, 1000, 0),
                                           NOISE, np.random.default_rng(4))
    assert np.isfinite(draws).all() and draws[:, 0].max() < 0.01 and draws[:, 1].max() < 0.1
    post = best_arm_posterior(counts, sums, NOISE)
    assert np.isfinite(post).all() and abs(post.sum() - 1) < 1e-9


def test_exact_prior_thompson_learns_and_rarely_abandons_the_best_arm():
    from minimal.bandit_algorithms import suffix_failure_frequency

    for seed in (0, 1, 2):
        runs = compare_baselines(n_runs=400, horizon=50, seed=seed)
        regret = {k: v.cumulative_regret()[:, -1].mean() for k, v in runs.items()}
        assert regret["thompson-exact"] < 0.4 * regret["random"], (seed, regret)
        fail = {k: suffix_failure_frequency(v, 25) for k, v in runs.items()}
        assert fail["thompson-exact"] < 0.25 * fail["greedy"], (seed, fail)
    assert "thompson-exact" not in compare_baselines(n_runs=4, horizon=5, kind="bernoulli")
