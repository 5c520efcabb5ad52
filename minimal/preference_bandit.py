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

