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
from minimal.preferences import MODELS, RewardMDP, cells_view
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


def main(argv: list[str] | None = None) -> CPLComparison:
    cfg = CPLConfig.cli(argv)
    res = compare_with_pipelines(cfg)
    print(f"{cfg.n_mdps} random MDPs, {cfg.n_pairs} regret-labelled pairs each")
    for name, (mean, frac) in res.summary().items():
        print(f"{name:36s} mean scaled return {mean:.2f}, near-optimal {frac:.2f}")
    return res


if __name__ == "__main__":
    run_cli(main)
