"""Contrastive Preference Learning (CPL): a policy straight from regret preferences (chapter 4).

Under maximum-entropy RL with temperature alpha the optimal advantage is the
scaled log-probability of the optimal policy, A*(s, a) = alpha log pi*(a|s)
(eq. ``cpl-advantage``).  Substituting it into the regret preference model
(eq. ``regret-model``) gives a model of preferences written in terms of the
policy alone, so maximum likelihood trains the policy directly (eq.
``cpl-loss``):

    S(sigma) = sum_t alpha log pi(a_t | s_t),
    loss     = -log sigmoid(S(sigma+) - lambda S(sigma-)),

with sigma+ the preferred and sigma- the rejected segment, and lambda in
(0, 1] the conservative weight (lambda < 1 pushes up the preferred segment's
actions more than it pushes down the rejected one's).  No reward model, no
value function, no RL: one supervised loss on the logged segments.

The policy here is tabular, logits (B, S, A) for B MDPs at once.
:func:`compare_with_pipelines` trains it on the same regret-labelled data as
the two-phase pipelines of :mod:`minimal.reward_learning` (learn a reward,
then run value iteration) and scores all three by the scaled true return.
Those labels use the hard-max advantage, so CPL's model is misspecified there;
:func:`maxent_comparison` labels the same segments with the *maximum-entropy*
advantage (eq. ``cpl-advantage``, from soft value iteration, eq. ``soft-bellman``),
for which CPL's loss with lambda = 1 is the correctly specified likelihood, and
measures how well CPL recovers alpha log pi* there.
Run ``python -m minimal.cpl --preset laptop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.preference_losses import bt_loss
from minimal.core.train import one_thread, resolve_device, train
from minimal.preferences import (
    MODELS,
    Preferences,
    RewardMDP,
    cells_view,
    logistic,
    sample_segments,
    summed_advantage,
)
from minimal.reward_learning import (
    GridPreferenceConfig,
    PreferenceBatch,
    RewardLearningConfig,
    fit_reward,
    policy_scores,
    random_mdps,
    regret_datasets,
    summed_advantage_torch,
)


@dataclass
class CPLConfig(GridPreferenceConfig):
    """CPL with a tabular policy on random gridworlds, against two-phase pipelines.

    ``laptop``: 24 random 5x5 MDPs, 1000 regret-labelled pairs each, about
    5 s on 2 CPU cores; mean scaled return 0.78 (CPL) against 0.67
    (partial-return cell reward + VI) and 0.95 (regret cell reward + VI) for data
    seed 0, and 0.76 / 0.72 / 0.91 averaged over data seeds 0-2.  ``gpu``: 200 MDPs,
    3000 pairs each (CUDA, bf16).

    ``gpu`` preset: for the chapter's comparison over 200 MDPs with 3000 pairs each.  What
    it delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric
    reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    alpha: float = param(1.0, "temperature: the advantage is alpha log pi (typical 0.1 to 1)", gt=0)
    lam: float = param(0.5, "conservative weight on the rejected segment's score", gt=0, le=1)
    n_pairs: int = param(1000, "regret-labelled preference pairs per MDP", gt=0)
    steps: int = TrainConfig.redefault("steps", 300)

    presets: ClassVar = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "n_mdps": 200, "n_pairs": 3000,
                "steps": 600, "warmup_steps": 20, "log_every": 50,
                "ckpt_dir": "checkpoints/cpl", "ckpt_every": 200},
    }

    def reward_config(self) -> RewardLearningConfig:
        """The matching config for the two-phase pipelines (same MDPs and data)."""
        return self.stage_config(RewardLearningConfig, "reward",
                                 shared=("segment_length", "grid_size", "gamma", "data_seed",
                                         "n_mdps"))


class TabularPolicy(nn.Module):
    """pi(a|s) = softmax(theta[s]) for each of B MDPs; theta (B, S, A) starts uniform."""

    def __init__(self, n_mdps: int, n_states: int, n_actions: int):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(n_mdps, n_states, n_actions))  # (B, S, A)

    def log_probs(self) -> torch.Tensor:
        return F.log_softmax(self.theta.float(), dim=-1)  # (B, S, A)


def segment_score(logp, states, actions, live, alpha: float) -> torch.Tensor:
    """S(sigma) = sum_t alpha log pi(a_t|s_t) over live steps (eq. ``cpl-loss``); -> (B, N).

    ``logp`` (B, S, A); ``states``, ``actions``, ``live`` (B, N, k).  Steps in
    a terminal state are skipped: every action there is equally (un)important.
    It is the regret model's summed advantage with alpha log pi in the place of A*,
    which is CPL's whole idea, so it is computed by the very same function.
    """
    return alpha * summed_advantage_torch(logp, states, actions, live)


def cpl_loss(logp, batch: PreferenceBatch, alpha: float, lam: float) -> torch.Tensor:
    """-log sigmoid(S+ - lambda S-) per pair (eq. ``cpl-loss``); -> (B, N)."""
    if not alpha > 0:
        raise ValueError(f"the temperature alpha must be positive, got {alpha}")
    if not 0 < lam <= 1:
        raise ValueError(f"the conservative weight lambda must be in (0, 1], got {lam}")
    s1 = segment_score(logp, batch.states1, batch.actions1, batch.live1, alpha)  # (B, N)
    s2 = segment_score(logp, batch.states2, batch.actions2, batch.live2, alpha)  # (B, N)
    first = batch.y > 0.5  # (B, N) the first segment was preferred
    s_pos, s_neg = torch.where(first, s1, s2), torch.where(first, s2, s1)
    return bt_loss(s_pos, lam * s_neg)  # (B, N): Bradley-Terry on the scores


def fit_cpl(mdps: list[RewardMDP], data, cfg: CPLConfig, desc: str = "cpl") -> np.ndarray:
    """Train one tabular policy per MDP with the CPL loss; returns log pi (B, S, A)."""
    device = resolve_device(cfg.device)
    batch = PreferenceBatch.stack(mdps, data, device)
    B, S, A = batch.P.shape[:3]
    policy = TabularPolicy(B, S, A)

    def loss_fn(policy, batch):
        loss = cpl_loss(policy.log_probs(), batch, cfg.alpha, cfg.lam)  # (B, N)
        return loss.mean(1).sum(), {"cpl_loss": loss.mean().item()}

    with one_thread():
        train(policy, cfg, lambda gen: batch, loss_fn, desc=desc)
    return policy.log_probs().detach().cpu().numpy()


@dataclass
class CPLComparison:
    scores: dict[str, np.ndarray]  # method -> (n_mdps,) scaled true returns

    def summary(self) -> dict[str, tuple[float, float]]:
        """method -> (mean scaled return, fraction near-optimal)."""
        return {k: (float(v.mean()), float((v >= 0.9).mean())) for k, v in self.scores.items()}


def compare_with_pipelines(cfg: CPLConfig) -> CPLComparison:
    """CPL vs reward learning + value iteration (under each preference model), same data."""
    rcfg = cfg.reward_config()
    mdps = random_mdps(rcfg)
    data = regret_datasets(mdps, cfg.n_pairs, rcfg)
    logp = fit_cpl(mdps, data, cfg)
    scores = {"CPL (no reward, no RL)": np.array(
        [m.scaled_return(lp.argmax(-1)) for m, lp in zip(mdps, logp)])}
    cells = [cells_view(m) for m in mdps]  # a free reward per cell: as flexible as CPL's table
    cell_data = [d.recount(c.Phi) for d, c in zip(data, cells)]
    for model in MODELS:
        name = model.replace("_", "-")
        for kind, ms, ds in (("4-feature", mdps, data), ("cell", cells, cell_data)):
            fcfg = rcfg.replace(**rcfg.stage_checkpoints(f"{model}_{kind}"))
            W = fit_reward(ms, ds, model, fcfg, desc=f"{model} {kind} reward")
            scores[f"{name} {kind} reward + VI"] = policy_scores(ms, W)
    return CPLComparison(scores)


# ------------------------------------------- labels for which CPL is exact
def soft_optimal_advantage(mdp: RewardMDP, alpha: float, tol: float = 1e-10,
                           max_iter: int = 10_000) -> np.ndarray:
    """The maximum-entropy optimal advantage ``A*(s, a) = alpha log pi*(a|s)``; (S, A).

    Soft value iteration (eq. ``soft-bellman``): ``Q = R + gamma P V`` and
    ``V = alpha logsumexp(Q / alpha)``, with ``V = 0`` in terminal states (the episode
    ends there, so no entropy bonus accrues).  The advantage ``Q - V`` is then
    ``alpha log pi*`` (eq. ``cpl-advantage``); in terminal states it is
    ``alpha log(1/A)``, which no score uses (terminal steps are masked).
    """
    if not alpha > 0:
        raise ValueError(f"the temperature alpha must be positive, got {alpha}")
    R, P, gamma = mdp.reward(), mdp.P, mdp.gamma
    V = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        Q = R + gamma * P @ V                                                  # (S, A)
        top = Q.max(1)
        V_new = top + alpha * np.log(np.exp((Q - top[:, None]) / alpha).sum(1))  # (S,)
        V_new[mdp.terminal] = 0.0
        done = np.abs(V_new - V).max() < tol
        V = V_new
        if done:
            break
    else:
        raise RuntimeError(f"soft value iteration did not reach tol={tol} in {max_iter} sweeps")
    Q = R + gamma * P @ V
    return Q - V[:, None]


def maxent_datasets(mdps: list[RewardMDP], n: int, cfg: CPLConfig) -> list[Preferences]:
    """n pairs per MDP labelled by the regret model with the max-ent advantage.

    P(sigma_1 > sigma_2) = logistic(sum_t A*_soft(sigma_1) - sum_t A*_soft(sigma_2)) over
    live steps, which is eq. ``cpl-model`` with the true alpha log pi*.  The segments are
    drawn exactly as :func:`minimal.reward_learning.regret_datasets` draws them (same
    generator, same order), so only the labels differ from the hard-max data.
    """
    rng = np.random.default_rng(cfg.data_seed + 1)
    out = []
    for m in mdps:
        seg1 = sample_segments(m, n, cfg.segment_length, rng)
        seg2 = sample_segments(m, n, cfg.segment_length, rng)
        A = soft_optimal_advantage(m, cfg.alpha)
        p = logistic(summed_advantage(seg1, A) - summed_advantage(seg2, A))
        out.append(Preferences(seg1, seg2, (rng.random(n) < p).astype(float)))
    return out


@dataclass
class MaxEntComparison:
    """CPL on max-ent-labelled data, against CPL on hard-max labels: per MDP, (n_mdps,) arrays."""

    scores: dict[str, np.ndarray]     # learner -> scaled true return of its greedy policy
    kl: dict[str, np.ndarray]         # learner -> mean over live states of KL(pi*_soft || pi_theta)
    agreement: dict[str, np.ndarray]  # learner -> share of live states where its argmax is pi*_soft's

    def summary(self) -> dict[str, tuple[float, float, float, float]]:
        """learner -> (mean score, near-optimal fraction, mean KL in nats, mean agreement)."""
        return {k: (float(v.mean()), float((v >= 0.9).mean()), float(self.kl[k].mean()),
                    float(self.agreement[k].mean())) for k, v in self.scores.items()}


def maxent_comparison(cfg: CPLConfig) -> MaxEntComparison:
    """CPL where its identity holds exactly: labels from the max-ent regret model.

    On the MDPs of :func:`compare_with_pipelines`, label ``cfg.n_pairs`` segment pairs per
    MDP twice, with the max-ent advantage (:func:`maxent_datasets`, CPL's own model) and
    with the hard-max one (:func:`minimal.reward_learning.regret_datasets`; same segments),
    and fit CPL with lambda = 1 (the plain likelihood) on each.  Every learner is measured
    against the max-ent optimum pi*_soft: KL(pi*_soft || pi_theta) per live state, how often
    its greedy action is pi*_soft's, and the scaled true return of its greedy policy; the
    reference ``"greedy pi*_soft (exact)"`` acts greedily on the true pi*_soft.
    """
    rcfg, fit_cfg = cfg.reward_config(), cfg.replace(lam=1.0)
    mdps = random_mdps(rcfg)
    soft = [soft_optimal_advantage(m, cfg.alpha) for m in mdps]   # alpha log pi*_soft
    fits = {
        "CPL on max-ent labels": fit_cpl(mdps, maxent_datasets(mdps, cfg.n_pairs, cfg), fit_cfg,
                                         "cpl max-ent"),
        "CPL on hard-max labels": fit_cpl(mdps, regret_datasets(mdps, cfg.n_pairs, rcfg), fit_cfg,
                                          "cpl hard-max"),
    }
    scores, kl, agree = {}, {}, {}
    for name, logp in fits.items():
        scores[name] = np.array([m.scaled_return(lp.argmax(-1)) for m, lp in zip(mdps, logp)])
        kl[name] = np.array([(np.exp(A / cfg.alpha) * (A / cfg.alpha - lp)).sum(-1)[~m.terminal].mean()
                             for m, lp, A in zip(mdps, logp, soft)])
        agree[name] = np.array([(lp.argmax(-1) == A.argmax(-1))[~m.terminal].mean()
                                for m, lp, A in zip(mdps, logp, soft)])
    name = "greedy pi*_soft (exact)"
    scores[name] = np.array([m.scaled_return(A.argmax(-1)) for m, A in zip(mdps, soft)])
    kl[name], agree[name] = np.zeros(len(mdps)), np.ones(len(mdps))
    return MaxEntComparison(scores, kl, agree)


def main(argv: list[str] | None = None) -> CPLComparison:
    cfg = CPLConfig.cli(argv)
    res = compare_with_pipelines(cfg)
    print(f"{cfg.n_mdps} random MDPs, {cfg.n_pairs} regret-labelled pairs each")
    for name, (mean, frac) in res.summary().items():
        print(f"{name:36s} mean scaled return {mean:.2f}, near-optimal {frac:.2f}")
    return res


if __name__ == "__main__":
    run_cli(main)
