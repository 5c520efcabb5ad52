"""Preference learning on a categorical "bandit": one prompt, N possible responses.

Chapter "Inverse RL for alignment", section "Preference optimization on a
bandit".  A language model answering one prompt is, abstractly, a categorical
policy pi_theta(y) over responses y in {0, ..., N-1}; with logits as the
parameters every quantity of the chapter is exact and cheap:

* the Bradley-Terry model (eq. ``bt-preference``) and its maximum-likelihood
  reward fit (eq. ``bt-loss``): :func:`fit_bradley_terry`;
* the KL-regularized objective (eq. ``kl-objective``) and its closed-form
  optimum pi*(y) ∝ pi_ref(y) exp(r(y) / beta) (eq. ``kl-optimal-policy``):
  :func:`optimal_policy`;
* the DPO loss (eq. ``dpo-loss``) and the IPO loss (eq. ``ipo-loss``), from
  :mod:`minimal.core.preference_losses`; :func:`population_dpo_fit` minimizes the
  exact (all-pairs) DPO loss and lands on pi* (the check of the derivation);
* max-ent IRL (eq. ``maxent-irl``) with its feature-matching gradient (eq. ``maxent-grad``):
  :func:`maxent_policy`, :func:`maxent_gradient`, :func:`fit_maxent_irl`; the soft Bellman
  recursion (eqs. ``kl-soft-bellman``, ``kl-soft-policy``, ``dpo-token-advantage``) on a
  two-token tree: :func:`soft_bellman_tree`;
* the DPO gradient's weight (eq. ``dpo-gradient``): :func:`dpo_gradient_weight`, and
  likelihood displacement with shared parameters: :func:`likelihood_displacement`;
* best-of-n, exactly: :func:`best_of_n_policy` and its KL bound (eq. ``bon-kl``),
  :func:`best_of_n_kl_bound`; forward vs reverse KL (eq. ``kl-directions``):
  :func:`discrete_gaussian`, :func:`fit_gaussian_kl`;
* Tajwar et al.'s comparison of offline maximum likelihood, offline DPO
  (a "negative gradient"), on-policy sampling, and both
  (:class:`BanditConfig`, :func:`train_bandit_policy`, :func:`compare_methods`);
* intransitive preferences (rock-paper-scissors): the best Bradley-Terry fit
  (:func:`best_bt_accuracy`) and Nash self-play by multiplicative weights, the
  exact version of a DNO iteration (eq. ``dno-update``): :func:`nash_self_play`.

Every trainer runs on the shared loop :func:`minimal.core.train.train`.  Run
``python -m minimal.preference_bandit --preset laptop`` for the method comparison.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.preference_losses import bt_loss, dpo_loss, log_ratio_margin
from minimal.core.train import train

METHODS = ("sft_offline", "dpo_offline", "sft_online", "pg_online", "dpo_online")
"""The four corners of Tajwar et al.'s grid, plus policy gradient:

* ``sft_offline``: filtered maximum likelihood on the best responses of a
  fixed dataset sampled from pi_ref (no on-policy data, no negative gradient);
* ``dpo_offline``: DPO on pairs from the same fixed dataset (negative gradient);
* ``sft_online``: filtered maximum likelihood on the best of fresh samples
  from the current policy (on-policy, no negative gradient; "best-of-n" /
  RAFT / ReST style);
* ``pg_online``: REINFORCE with a mean baseline and a KL penalty to pi_ref
  (on-policy, negative gradient on below-average samples; PPO without clipping
  is the same gradient on fresh data);
* ``dpo_online``: DPO on pairs of fresh samples from the current policy,
  labelled by the reward (on-policy and negative gradient).
"""


# ------------------------------------------------------------ the bandit itself
def gaussian_bump(n: int, center: float, width: float) -> torch.Tensor:
    """exp(-(y - center)^2 / (2 width^2)) for y = 0..n-1, shape (n,)."""
    y = torch.arange(n, dtype=torch.float64)
    return torch.exp(-((y - center) ** 2) / (2 * width**2))


def reference_policy(n: int, center: float = 0.3, width: float = 0.08,
                     floor: float = 0.02) -> torch.Tensor:
    """pi_ref: a bump at ``center * n`` mixed with a uniform ``floor``, shape (n,).

    The floor plays the role of the long tail of a language model: every
    response is possible, most are very unlikely.
    """
    if n < 4:
        raise ValueError(f"need at least 4 actions, got n = {n}")
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    bump = gaussian_bump(n, center * n, width * n)
    return (1 - floor) * bump / bump.sum() + floor / n


def peaked_reward(n: int, peak: float, width: float = 0.08) -> torch.Tensor:
    """r(y) in [0, 1]: a bump of height 1 at ``peak * n``, shape (n,)."""
    return gaussian_bump(n, peak * n, width * n)


def expected_reward(probs: torch.Tensor, reward: torch.Tensor) -> float:
    """E_{y ~ pi}[r(y)] for a probability vector ``probs``."""
    return float((probs.double() * reward.double()).sum())


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) in nats for probability vectors of the same shape."""
    p, q = p.double(), q.double()
    mask = p > 0
    return float((p[mask] * (p[mask].log() - q[mask].log())).sum())


# ---------------------------------------------------- closed form and losses
def optimal_policy(ref: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    """pi*(y) = pi_ref(y) exp(r(y) / beta) / Z (eq. ``kl-optimal-policy``)."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if ref.shape != reward.shape:
        raise ValueError(f"ref {tuple(ref.shape)} and reward {tuple(reward.shape)} differ in shape")
    return torch.softmax(ref.double().log() + reward.double() / beta, dim=-1)


def kl_objective(probs: torch.Tensor, ref: torch.Tensor, reward: torch.Tensor,
                 beta: float) -> float:
    """J(pi) = E_pi[r] - beta KL(pi || pi_ref) (eq. ``kl-objective``)."""
    return expected_reward(probs, reward) - beta * kl_divergence(probs, ref)


class CategoricalPolicy(nn.Module):
    """pi_theta(y) = softmax(theta)_y, with theta initialised at log pi_ref."""

    def __init__(self, ref: torch.Tensor):
        super().__init__()
        self.theta = nn.Parameter(ref.float().log().clone())  # (N,)

    def log_probs(self) -> torch.Tensor:
        return torch.log_softmax(self.theta.float(), dim=-1)  # (N,)

    def probs(self) -> torch.Tensor:
        return self.log_probs().exp()  # (N,)


def pair_preferences(reward: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry P[i, j] = sigma(r_i - r_j) (eq. ``bt-preference``), shape (N, N)."""
    r = reward.double()
    return torch.sigmoid(r[:, None] - r[None, :])


def population_dpo_fit(ref: torch.Tensor, prefs: torch.Tensor, beta: float,
                       steps: int = 500, tol: float = 1e-12) -> torch.Tensor:
    """Minimize the exact DPO loss over all ordered pairs (y, y') ~ uniform x uniform.

    The pair (y, y') is labelled "y wins" with probability ``prefs[y, y']``; the expected
    loss is a smooth function of the logits theta, minimized
    with L-BFGS (strong-Wolfe line search, float64, at most ``steps`` iterations),
    stopping when the gradient's largest entry is below ``tol`` (float64 round-off may stop it
    earlier in flat, extreme cases; below 1e-6 counts as converged).  Returns the fitted
    policy, shape (N,).  When ``prefs`` is Bradley-Terry in a reward r, the minimizer is
    pi* of eq. ``kl-optimal-policy`` (the derivation in the text); this function checks it.
    A quasi-Newton method, not a fixed-step one, because pi* can be extremely peaked: with
    rewards large against beta its logits sit hundreds of nats from pi_ref's, which a
    first-order method with a fixed budget does not reach (Adam at 800 steps stopped up
    to 0.49 away in total variation).  A fit that does not converge raises RuntimeError.
    """
    n = ref.numel()
    if prefs.shape != (n, n):
        raise ValueError(f"prefs must be ({n}, {n}), got {tuple(prefs.shape)}")
    p = prefs.double()
    if ((p > 1 - 1e-12) | (p < 1e-12)).any():
        raise ValueError("prefs within 1e-12 of 0 or 1 (a Bradley-Terry reward gap above about "
                         "27): the expected loss is flat to float64 there and its minimizer "
                         "cannot be found; rescale the rewards")
    logp_ref = ref.double().log()
    theta = logp_ref.clone().requires_grad_(True)
    prefs = prefs.double()
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=steps, tolerance_grad=tol,
                            tolerance_change=0.0, history_size=50, line_search_fn="strong_wolfe")

    def expected_loss():
        opt.zero_grad()
        logp = torch.log_softmax(theta, dim=-1)  # (N,)
        h = (logp - logp_ref)[:, None] - (logp - logp_ref)[None, :]  # (N, N): y vs y'
        loss = (prefs * dpo_loss(h, beta)).mean()  # y wins with prob P[y, y']
        loss.backward()
        return loss

    opt.step(expected_loss)
    expected_loss()
    if not theta.grad.abs().max() < 1e-6:
        raise RuntimeError(f"population_dpo_fit did not converge in {steps} L-BFGS iterations "
                           f"(largest gradient entry {theta.grad.abs().max().item():.1e}); "
                           "raise steps")
    return torch.softmax(theta.detach(), dim=-1)


# ------------------------------------------- max-ent IRL and the soft Bellman equations
def maxent_policy(features: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """p_w(y) = exp(w . phi(y)) / sum_y' exp(w . phi(y')) (eq. ``maxent-irl``), shape (N,).

    On the bandit a "trajectory" is one response y, and its reward is linear in the
    features: r_w(y) = w . phi(y), with ``features`` of shape (N, K) and ``w`` of shape (K,).
    """
    return torch.softmax(features.double() @ w.double(), dim=-1)


def maxent_gradient(features: torch.Tensor, w: torch.Tensor, demos: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean log-likelihood of ``demos`` under p_w (eq. ``maxent-grad``), shape (K,).

    It is the demonstrations' mean features minus the model's expected features,
    (1/M) sum_m phi(y_m) - E_{y ~ p_w}[phi(y)]; zero exactly when the two match.
    """
    phi = features.double()
    return phi[demos].mean(0) - maxent_policy(phi, w) @ phi


def fit_maxent_irl(features: torch.Tensor, demos: torch.Tensor, iters: int = 50,
                   tol: float = 1e-10) -> torch.Tensor:
    """Maximum-likelihood reward weights w of eq. ``maxent-irl``, by damped Newton, shape (K,).

    The log-likelihood is concave in w: its gradient is eq. ``maxent-grad`` and its Hessian
    is minus the model's feature covariance, Cov_{p_w}[phi].  Damped Newton steps
    w <- w + Cov^{-1} grad (halved while the likelihood would fall) run until the gradient's
    largest entry is below ``tol``: there the fitted model reproduces the demonstrations'
    mean features.
    """
    phi = features.double()
    w = torch.zeros(phi.shape[1], dtype=torch.float64)
    for _ in range(iters):
        grad = maxent_gradient(phi, w, demos)
        if grad.abs().max() < tol:
            return w
        p = maxent_policy(phi, w)
        centred = phi - p @ phi
        cov = centred.T @ (p[:, None] * centred)  # (K, K)
        step = torch.linalg.solve(cov, grad)
        loglik = torch.log_softmax(phi @ w, dim=-1)[demos].mean()
        for _ in range(30):
            if torch.log_softmax(phi @ (w + step), dim=-1)[demos].mean() >= loglik:
                break
            step = step / 2  # damped Newton: halve the step until the likelihood rises
        w = w + step
    raise RuntimeError(f"fit_maxent_irl did not converge in {iters} Newton steps "
                       f"(largest gradient entry {grad.abs().max().item():.1e})")


def soft_bellman_tree(ref1: torch.Tensor, ref2: torch.Tensor, reward: torch.Tensor,
                      beta: float) -> dict[str, torch.Tensor]:
    """The KL-regularised soft Bellman recursion (eq. ``kl-soft-bellman``) on a two-token tree.

    A response is two tokens (a, b) from a vocabulary of n tokens; pi_ref(a, b) =
    ``ref1[a] * ref2[a, b]`` (shapes (n,) and (n, n), rows of ``ref2`` sum to 1) and the
    reward ``reward[a, b]`` (n, n) arrives at the end.  Backwards from the leaves:
    Q(s1, b) = r(a, b), V(s1) = beta log sum_b ref2[a, b] exp(Q/beta); Q(s0, a) = V(s1 = a),
    V(s0) = beta log sum_a ref1[a] exp(Q/beta); each token's policy is
    pi(tok | s) = pi_ref(tok | s) exp((Q(s, tok) - V(s)) / beta) (eq. ``kl-soft-policy``).
    Returns the values, the token policies and their product ``pi_seq`` (n, n).
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    r = reward.double()
    q2 = r  # (n, n): the last token collects the reward
    v1 = beta * torch.logsumexp(ref2.double().log() + q2 / beta, dim=-1)  # (n,)
    q1 = v1  # (n,): no reward before the end, the next state is the prefix (a,)
    v0 = beta * torch.logsumexp(ref1.double().log() + q1 / beta, dim=-1)  # scalar
    pi1 = ref1.double() * torch.exp((q1 - v0) / beta)  # (n,)
    pi2 = ref2.double() * torch.exp((q2 - v1[:, None]) / beta)  # (n, n)
    return {"q1": q1, "v0": v0, "q2": q2, "v1": v1, "pi1": pi1, "pi2": pi2,
            "pi_seq": pi1[:, None] * pi2}


# ------------------------------------------------- the DPO gradient, displacement
def dpo_gradient_weight(h: torch.Tensor, beta: float) -> torch.Tensor:
    """beta sigma(-beta h) = beta sigma(rhat_l - rhat_w) per pair (eq. ``dpo-gradient``).

    The DPO gradient is -E[weight * (grad log pi(y_w) - grad log pi(y_l))]: pairs the
    implicit reward already ranks correctly (large margin h) get little weight.
    """
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return beta * torch.sigmoid(-beta * h)


def likelihood_displacement(seed: int, n_tokens: int = 50, dim: int = 8, similarity: float = 0.3,
                            beta: float = 0.5, steps: int = 300, lr: float = 1.0
                            ) -> dict[str, Any]:
    """DPO on one pair of similar responses, with logits U h that share the parameter h.

    The policy is pi_h(y) = softmax(U h)_y: fixed random unembeddings U (n_tokens, dim),
    the trainable "hidden state" h (dim,; xi in the text) starting at a random h0 (so pi_ref = pi_h0).
    Response 1 (the rejected y_l) has the unembedding of response 0 (the chosen y_w)
    plus ``similarity`` times Gaussian noise.  Trains ``steps`` SGD steps of dpo_loss
    (eq. ``dpo-loss``), each written out with its gradient (eq. ``dpo-gradient``, the form
    ``test_dpo_gradient_is_the_weighted_difference_of_score_functions`` checks against
    autograd), and returns the chosen and rejected log-probabilities before and
    after, the margin h_theta, and the token that gained most probability.  The step moves h
    along u_w - u_l, which can lower both log-probabilities.
    """
    gen = torch.Generator().manual_seed(seed)
    U = torch.randn(n_tokens, dim, generator=gen, dtype=torch.float64)
    U[1] = U[0] + similarity * torch.randn(dim, generator=gen, dtype=torch.float64)
    h0 = torch.randn(dim, generator=gen, dtype=torch.float64)
    logp_ref = torch.log_softmax(U @ h0, dim=-1)  # (N,)
    h = h0.clone()
    for _ in range(steps):
        logp = torch.log_softmax(U @ h, dim=-1)
        margin = log_ratio_margin(logp[:1], logp[1:2], logp_ref[:1], logp_ref[1:2])
        # one SGD step on dpo_loss, written out by eq. dpo-gradient: grad_h h_theta = u_w - u_l
        h = h + lr * dpo_gradient_weight(margin, beta) * (U[0] - U[1])
    logp = torch.log_softmax(U @ h, dim=-1)
    gainer = int((logp.exp() - logp_ref.exp()).argmax())
    return {"chosen_before": float(logp_ref[0]), "chosen_after": float(logp[0]),
            "rejected_before": float(logp_ref[1]), "rejected_after": float(logp[1]),
            "margin": float((logp[0] - logp_ref[0]) - (logp[1] - logp_ref[1])),
            "gainer": gainer, "gainer_prob": float(logp[gainer].exp()),
            "furthest_along_difference": int((U @ (U[0] - U[1])).argmax())}


# ---------------------------------------------------------------- best-of-n
def best_of_n_policy(ref: torch.Tensor, reward: torch.Tensor, n: int) -> torch.Tensor:
    """The exact distribution of the best of n samples from pi_ref, shape (N,).

    With F(y) = pi_ref(r(y') <= r(y)) and F^-(y) = pi_ref(r(y') < r(y)), the best of n
    i.i.d. draws has a reward at the level of y with probability F(y)^n - F^-(y)^n; a tie
    group of equal rewards shares it in proportion to pi_ref (ties broken at random).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    p, r = ref.double(), reward.double()
    levels, group_of = torch.unique(r, sorted=True, return_inverse=True)  # tie groups, ascending
    group = torch.zeros(len(levels), dtype=torch.float64).index_add_(0, group_of, p)  # their mass
    at_most = group.cumsum(0).clamp(max=1.0)  # F at each reward level
    below = at_most - group  # F^- at each reward level
    return p * ((at_most**n - below**n) / group)[group_of]


def best_of_n_kl_bound(n: int) -> float:
    """log n - (n - 1)/n (eq. ``bon-kl``): KL(BoN || pi_ref) for continuous, tie-free rewards.

    For a discrete pi_ref, or rewards with ties, the exact KL is below it.
    """
    return math.log(n) - (n - 1) / n


# ------------------------------------------------------ forward vs reverse KL
def discrete_gaussian(n: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Gaussians restricted to y = 0..n-1 and renormalised, shape (..., n).

    The restricted family q of eq. ``kl-directions``; broadcasts over ``mean`` and ``std``.
    """
    y = torch.arange(n, dtype=torch.float64)
    logits = -((y - mean[..., None]) ** 2) / (2 * std[..., None] ** 2)
    return torch.softmax(logits, dim=-1)


def fit_gaussian_kl(target: torch.Tensor, direction: str) -> dict[str, float]:
    """The discrete Gaussian q closest to ``target`` in KL(p||q) ("forward") or KL(q||p) ("reverse").

    The two divergences of eq. ``kl-directions``: mode covering and mode seeking.
    Exhaustive search over a grid of means (steps of 0.25) and standard deviations
    (60 values from 0.5 to n/2, log-spaced), so the global minimum is found even where
    the reverse KL has one local minimum per mode.  Returns mean, std and the fit's KL.
    """
    if direction not in ("forward", "reverse"):
        raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")
    p = target.double()
    n = p.numel()
    means = torch.arange(0, n - 1 + 1e-9, 0.25, dtype=torch.float64)
    stds = torch.logspace(math.log10(0.5), math.log10(n / 2), 60, dtype=torch.float64)
    q = discrete_gaussian(n, means[:, None], stds[None, :]).clamp_min(1e-300)  # (M, S, n)
    if direction == "forward":
        kl = (p * (p.clamp_min(1e-300).log() - q.log())).sum(-1)
    else:
        kl = (q * (q.log() - p.clamp_min(1e-300).log())).sum(-1)
    i = int(kl.argmin())
    m, s = divmod(i, len(stds))
    return {"mean": float(means[m]), "std": float(stds[s]), "kl": float(kl.flatten()[i])}


# ---------------------------------------------------------- Bradley-Terry fit
def sample_bt_pairs(reward: torch.Tensor, n_pairs: int, gen: torch.Generator,
                    prefs: torch.Tensor | None = None):
    """Uniform pairs (a, b) labelled by Bradley-Terry sampling: returns (winner, loser), each (n_pairs,).

    With ``prefs`` given, the label comes from P[a, b] instead (general preferences).
    """
    n = reward.numel()
    a = torch.randint(n, (n_pairs,), generator=gen)
    b = torch.randint(n - 1, (n_pairs,), generator=gen)
    b = b + (b >= a).long()  # distinct from a
    p = pair_preferences(reward) if prefs is None else prefs.double()
    a_wins = torch.rand(n_pairs, generator=gen, dtype=torch.float64) < p[a, b]
    return torch.where(a_wins, a, b), torch.where(a_wins, b, a)


def fit_bradley_terry(winners: torch.Tensor, losers: torch.Tensor, n: int,
                      steps: int = 500, lr: float = 0.1, l2: float = 1e-3) -> torch.Tensor:
    """Maximum-likelihood rewards r_phi (eq. ``bt-loss``), centred to mean 0, shape (n,)."""
    if winners.shape != losers.shape:
        raise ValueError(f"winners {tuple(winners.shape)} and losers {tuple(losers.shape)} differ")
    r = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([r], lr=lr)
    for _ in range(steps):
        loss = bt_loss(r[winners], r[losers]).mean() + l2 * (r**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    r = r.detach()
    return r - r.mean()


def pairwise_accuracy(reward: torch.Tensor, winners: torch.Tensor, losers: torch.Tensor) -> float:
    """Fraction of pairs where the reward ranks the winner higher (ties count half)."""
    diff = reward[winners] - reward[losers]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


# ------------------------------------------------ intransitive preferences, Nash
def rock_paper_scissors(strength: float = 0.9) -> torch.Tensor:
    """P[i, j] = P(i beats j) for rock (0), paper (1), scissors (2), shape (3, 3).

    Paper beats rock, scissors beat paper, rock beats scissors, each with
    probability ``strength``; the diagonal is 1/2.
    """
    if not 0.5 < strength <= 1:
        raise ValueError(f"strength must be in (0.5, 1], got {strength}")
    P = torch.full((3, 3), 0.5, dtype=torch.float64)
    for win, lose in ((1, 0), (2, 1), (0, 2)):
        P[win, lose], P[lose, win] = strength, 1 - strength
    return P


def best_bt_accuracy(prefs: torch.Tensor) -> float:
    """Highest fraction of ordered pairs i != j whose majority preference any reward reproduces.

    A reward orders the responses, so it suffices to try every ordering
    (ties only lose accuracy).  For a cyclic preference over 3 responses the
    answer is 2/3: every ordering gets one pair of the cycle wrong.
    """
    n = prefs.shape[0]
    if n > 8:
        raise ValueError(f"best_bt_accuracy enumerates orderings; n = {n} > 8 is too many")
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j and prefs[i, j] != 0.5]
    best = 0.0
    for order in itertools.permutations(range(n)):
        rank = {y: -k for k, y in enumerate(order)}  # earlier = higher reward
        hits = sum((rank[i] > rank[j]) == bool(prefs[i, j] > 0.5) for i, j in pairs)
        best = max(best, hits / len(pairs))
    return best


def preference_reward(prefs: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """r_t(y) = P(y beats y' ~ pi_t) = sum_y' P[y, y'] pi_t(y'), shape (N,)."""
    return prefs.double() @ policy.double()


def exploitability(prefs: torch.Tensor, policy: torch.Tensor) -> float:
    """max_y P(y beats pi) - 1/2: 0 exactly at a Nash equilibrium of the preference game."""
    return float(preference_reward(prefs, policy).max() - 0.5)


def nash_self_play(prefs: torch.Tensor, start: torch.Tensor, eta: float = 0.5,
                   iters: int = 500) -> dict[str, torch.Tensor]:
    """DNO-style self-play, exact: pi_{t+1} ∝ pi_t exp(r_t / eta) (eq. ``dno-update``).

    r_t is the win rate against the current policy (:func:`preference_reward`).
    Returns the last iterates, their running averages, and the exploitability
    of both, each with one row per iteration.
    """
    if eta <= 0:
        raise ValueError(f"eta must be positive, got {eta}")
    if start.shape != prefs.shape[:1]:
        raise ValueError(f"start has shape {tuple(start.shape)}, prefs {tuple(prefs.shape)}")
    pi = start.double().clone()
    total = torch.zeros_like(pi)
    lasts, avgs, ex_last, ex_avg = [], [], [], []
    for t in range(iters):
        total += pi
        avg = total / (t + 1)
        lasts.append(pi.clone())
        avgs.append(avg.clone())
        ex_last.append(exploitability(prefs, pi))
        ex_avg.append(exploitability(prefs, avg))
        pi = torch.softmax(pi.log() + preference_reward(prefs, pi) / eta, dim=-1)
    return {"last": torch.stack(lasts), "average": torch.stack(avgs),
            "exploit_last": torch.tensor(ex_last), "exploit_average": torch.tensor(ex_avg)}


def bt_then_maximize(prefs: torch.Tensor, n_pairs: int, seed: int) -> dict[str, Any]:
    """Fit a Bradley-Terry reward to sampled preferences, then play its argmax.

    Returns the fitted reward, its accuracy on fresh pairs, and the
    exploitability of the greedy policy (a reward maximizer is deterministic).
    """
    n = prefs.shape[0]
    gen = torch.Generator().manual_seed(seed)
    dummy = torch.zeros(n, dtype=torch.float64)
    w, l = sample_bt_pairs(dummy, n_pairs, gen, prefs=prefs)
    r = fit_bradley_terry(w, l, n)
    w2, l2 = sample_bt_pairs(dummy, 20 * n_pairs, gen, prefs=prefs)
    greedy = F.one_hot(r.argmax(), n).double()
    return {"reward": r, "accuracy": pairwise_accuracy(r, w2, l2),
            "exploitability": exploitability(prefs, greedy)}


# ------------------------------------------------ Tajwar et al.'s comparison
@dataclass
class BanditConfig(TrainConfig):
    """One preference fine-tuning run on the categorical bandit.

    ``gpu`` preset: for the bandit with 10,000 actions and 20k offline pairs.  What it
    delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric reached)
    is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    method: str = param("sft_offline", "which learner (see METHODS)", choices=METHODS)
    n_actions: int = param(100, "number of responses N (typical 20 to 1000)", ge=4)
    peak: float = param(0.8, "reward peak as a fraction of N; pi_ref's bump is at 0.3",
                        ge=0, le=1)
    ref_floor: float = param(0.02, "uniform mass mixed into pi_ref (its long tail)", ge=0, lt=1)
    beta: float = param(0.05, "KL strength beta (DPO temperature; typical 0.01 to 0.5)", gt=0)
    n_offline: int = param(500, "responses sampled once from pi_ref for the offline methods",
                           gt=1)
    keep_frac: float = param(0.1, "fraction of best responses kept by filtered SFT", gt=0, le=1)
    steps: int = TrainConfig.redefault("steps", 150)
    batch_size: int = param(64, "responses (or pairs) per step", gt=1)
    lr: float = TrainConfig.redefault(
        "lr", 0.1, doc="Adam learning rate on the logits (typical 0.01 to 0.3)")
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 0, doc="linear warm-up steps")
    min_lr_ratio: float = TrainConfig.redefault(
        "min_lr_ratio", 1.0, doc="final LR as a fraction of lr (1 = constant)")
    grad_clip: float = TrainConfig.redefault("grad_clip", 0.0)
    log_every: int = TrainConfig.redefault("log_every", 5)
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "n_actions": 10_000, "steps": 2000,
                "batch_size": 1024, "n_offline": 20_000, "ckpt_dir": "checkpoints/bandit"},
    }


@dataclass
class BanditResult:
    policy: CategoricalPolicy
    reward_curve: list[float]  # true expected reward at history.steps
    steps: list[int]
    final_reward: float
    final_kl: float  # KL(pi_theta || pi_ref)


def train_bandit_policy(cfg: BanditConfig) -> BanditResult:
    """Fine-tune pi_theta from pi_ref with ``cfg.method``; track the true reward."""
    n = cfg.n_actions
    ref = reference_policy(n, floor=cfg.ref_floor)  # (N,)
    reward = peaked_reward(n, cfg.peak)  # (N,)
    logp_ref = ref.float().log()
    policy = CategoricalPolicy(ref)
    data_gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    offline = torch.multinomial(ref.float(), cfg.n_offline, replacement=True, generator=data_gen)
    keep = offline[reward[offline].argsort(descending=True)]  # best first
    keep = keep[: max(1, int(cfg.keep_frac * cfg.n_offline))]
    n_keep = max(1, int(cfg.keep_frac * cfg.batch_size))

    def sample(k: int, gen: torch.Generator) -> torch.Tensor:
        probs = policy.probs().detach().float().cpu()
        return torch.multinomial(probs, k, replacement=True, generator=gen)  # (k,)

    def get_batch(gen: torch.Generator):
        if cfg.method == "sft_offline":
            return keep[torch.randint(len(keep), (cfg.batch_size,), generator=gen)]
        if cfg.method == "dpo_offline":
            idx = torch.randint(cfg.n_offline, (2, cfg.batch_size), generator=gen)
            return offline[idx]  # (2, B)
        if cfg.method == "sft_online":
            y = sample(cfg.batch_size, gen)
            return y[reward[y].argsort(descending=True)[:n_keep]]
        if cfg.method == "pg_online":
            return sample(cfg.batch_size, gen)
        return sample(2 * cfg.batch_size, gen).view(2, cfg.batch_size)  # dpo_online

    def loss_fn(model: CategoricalPolicy, batch: torch.Tensor):
        logp = model.log_probs()  # (N,)
        lref = logp_ref.to(logp.device)
        batch = batch.to(logp.device)
        r = reward.float().to(logp.device)
        if cfg.method in ("sft_offline", "sft_online"):
            loss = -logp[batch].mean()  # maximum likelihood on the kept responses
        elif cfg.method == "pg_online":
            adv = r[batch] - r[batch].mean()  # (B,) mean baseline
            kl = (logp.exp() * (logp - lref)).sum()  # exact KL(pi || pi_ref)
            loss = -(adv * logp[batch]).mean() + cfg.beta * kl
        else:  # DPO on pairs, the higher-reward response wins
            a, b = batch[0], batch[1]  # (B,), (B,)
            a_wins = r[a] >= r[b]
            yw, yl = torch.where(a_wins, a, b), torch.where(a_wins, b, a)
            valid = (r[yw] > r[yl]).float()  # identical rewards carry no preference
            h = log_ratio_margin(logp[yw], logp[yl], lref[yw], lref[yl])
            loss = (dpo_loss(h, cfg.beta) * valid).sum() / valid.sum().clamp(min=1)
        with torch.no_grad():
            true_r = float((logp.exp() * r).sum())
        return loss, {"reward": true_r}

    history = train(policy, cfg, get_batch, loss_fn, desc=cfg.method)
    probs = policy.probs().detach().cpu()
    return BanditResult(policy=policy, reward_curve=history.metrics["reward"],
                        steps=history.steps, final_reward=expected_reward(probs, reward),
                        final_kl=kl_divergence(probs, ref))


def run_methods(peak: float, seeds=(0, 1, 2), methods=METHODS,
                **overrides) -> dict[str, list[BanditResult]]:
    """Train every method on every seed: {method: [BanditResult per seed]}."""
    return {method: [train_bandit_policy(BanditConfig(method=method, peak=peak, seed=s,
                                                      **overrides)) for s in seeds]
            for method in methods}


def compare_methods(peak: float, seeds=(0, 1, 2), methods=METHODS,
                    **overrides) -> dict[str, list[float]]:
    """Final true reward of each method for each seed: {method: [reward per seed]}."""
    runs = run_methods(peak, seeds, methods, **overrides)
    return {method: [res.final_reward for res in results] for method, results in runs.items()}


def main(argv: list[str] | None = None) -> None:
    cfg = BanditConfig.cli(argv, description="Preference fine-tuning on a categorical bandit")
    res = train_bandit_policy(cfg)
    ref = reference_policy(cfg.n_actions, floor=cfg.ref_floor)
    print(f"method {cfg.method}, peak {cfg.peak}: reference reward "
          f"{expected_reward(ref, peaked_reward(cfg.n_actions, cfg.peak)):.3f}, "
          f"final reward {res.final_reward:.3f}, KL to reference {res.final_kl:.2f} nats")


if __name__ == "__main__":
    run_cli(main)

