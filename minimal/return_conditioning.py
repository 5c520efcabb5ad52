"""Return-conditioned supervised learning (RCSL), the idea behind the Decision Transformer.

Chapter "Representations and offline RL", section "Return conditioning".  From
offline steps ``(s_t, a_t, G_t)`` (state, action, return-to-go) we fit a policy
that imitates the logged action given the state *and the return that followed*:

    min_theta  E_(s,a,G)~D [ -log pi_theta(a | s, G) ]          (Eq. rcsl-loss)

and at test time ask for a high return by feeding a target ``g`` in place of G
(Chen et al., 2021).  With deterministic dynamics this works; with stochastic
rewards or transitions the policy learns ``P_D(a | s, G = g)``, the actions that
*happened to precede* return g, luck included (Eq. ``luck-posterior``), so the
return it achieves can be far below the target it was given.

The Decision Transformer reads the whole history with a transformer; in the
tabular environments of this chapter the state and the return-to-go are a
sufficient input, so the policy is a small MLP on one-hot ``(s, G)``.  It is
trained with the shared loop :func:`minimal.core.train.train`.

    python -m minimal.return_conditioning                       # bandit, ~2 s on CPU
    python -m minimal.return_conditioning --set env=frozenlake
    python -m minimal.return_conditioning --preset gpu
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.train import History, one_thread, train
from minimal.worlds.offline_envs import (
    BernoulliBandit,
    FrozenLake,
    Steps,
    make_bandit_dataset,
    make_frozenlake_dataset,
)


# -------------------------------------------------------------------- config
@dataclass
class OfflineConfig(TrainConfig):
    """Offline dataset and training fields shared by RCSL and DoC.

    ``gpu`` preset: for RCSL on 100k offline episodes with a 256-wide network.  What it
    delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric reached)
    is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    env: str = param("bandit", "which offline dataset", choices=("bandit", "frozenlake"))
    n_episodes: int | None = param(None, "episodes in the offline dataset; none: 1000 for "
                                   "the bandit (as in the DoC paper), 3000 for FrozenLake", gt=0)
    gamble_success: float = param(0.1, "bandit: P(reward 1) of arm 0, the gamble", ge=0, le=1)
    good_success: float = param(0.9, "bandit: P(reward 1) of arm 1, the good arm", ge=0, le=1)
    p_gamble: float = param(0.95, "bandit: behaviour policy's P(pull the gamble)", ge=0, le=1)
    p_random: float = param(0.3, "frozenlake: behaviour's P(random action), else optimal",
                            ge=0, le=1)
    data_seed: int = param(0, "seed of the offline dataset", ge=0)
    n_hidden: int = param(64, "hidden units of the MLP policy (16 to 256)", gt=0)
    batch_size: int = TrainConfig.redefault(
        "batch_size", 100_000,
        doc="rows (s, a, G) per batch; at least the dataset size means full-batch training on the "
            "distinct rows")
    lr: float = TrainConfig.redefault("lr", 1e-2, doc="peak AdamW learning rate (1e-3 to 3e-2)")
    weight_decay: float = TrainConfig.redefault("weight_decay", 0.0, doc="AdamW weight decay")
    log_every: int = TrainConfig.redefault("log_every", 50)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "n_episodes": 100_000, "n_hidden": 256,
                "steps": 5000, "batch_size": 4096, "ckpt_dir": "checkpoints/offline_rl"},
    }


DEFAULT_EPISODES = {"bandit": 1000, "frozenlake": 3000}


def make_dataset(cfg: OfflineConfig) -> tuple[BernoulliBandit | FrozenLake, Steps]:
    """The environment and its offline dataset as ``cfg`` describes them."""
    n = cfg.n_episodes or DEFAULT_EPISODES[cfg.env]
    if cfg.env == "bandit":
        return make_bandit_dataset(n, (cfg.gamble_success, cfg.good_success),
                                   (cfg.p_gamble, 1 - cfg.p_gamble), cfg.data_seed)
    return make_frozenlake_dataset(n, cfg.p_random, cfg.data_seed)


def policy_value(env, table: np.ndarray) -> float:
    """Exact expected return of a stationary policy table ``(S, A)`` in ``env``."""
    if isinstance(env, BernoulliBandit):
        return env.policy_value(table[0])
    return env.policy_value(table)




def batch_sampler(data: Steps, batch_size: int):
    """``get_batch(gen)`` for :func:`minimal.core.train.train`; batches are ``(s, a, G, w)``.

    ``w`` weights each row so that ``(w * loss).sum()`` is the mean over the batch.
    A ``batch_size`` at least the dataset's size means *full-batch* training on the
    distinct ``(s, a, G)`` rows, each weighted by its frequency: the exact
    expectation over the data in a few hundred rows (tables learn rare states
    too, and the gradient has no sampling noise).
    """
    if batch_size >= len(data):
        rows, counts = np.unique(np.stack([data.state, data.action, data.G], 1), axis=0,
                                 return_counts=True)
        full = tuple(torch.as_tensor(rows[:, i], dtype=torch.long) for i in range(3))
        w = torch.as_tensor(counts / counts.sum(), dtype=torch.float32)
        return lambda gen: (*full, w)
    s, a, G = (torch.as_tensor(x, dtype=torch.long) for x in (data.state, data.action, data.G))
    w = torch.full((batch_size,), 1.0 / batch_size)

    def get_batch(gen: torch.Generator):
        idx = torch.randint(len(data), (batch_size,), generator=gen)  # (B,)
        return s[idx], a[idx], G[idx], w

    return get_batch


# --------------------------------------------------------------------- model
class ReturnConditionedPolicy(nn.Module):
    """``pi_theta(a | s, G)``: an MLP on the one-hot state and one-hot return-to-go."""

    def __init__(self, n_states: int, n_returns: int, n_actions: int, n_hidden: int = 64):
        super().__init__()
        self.n_states, self.n_returns, self.n_actions = n_states, n_returns, n_actions
        self.net = nn.Sequential(nn.Linear(n_states + n_returns, n_hidden), nn.ReLU(),
                                 nn.Linear(n_hidden, n_actions))

    def forward(self, s: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        if s.shape != G.shape:
            raise ValueError(f"s and G must have the same shape, got {tuple(s.shape)} "
                             f"and {tuple(G.shape)}")
        if G.max() >= self.n_returns or G.min() < 0:
            raise ValueError(f"target return must be an integer in [0, {self.n_returns}), "
                             f"got {G.min().item()}..{G.max().item()}")
        x = torch.cat([F.one_hot(s, self.n_states), F.one_hot(G, self.n_returns)], -1).float()
        return self.net(x)  # (B, A) action logits

    @torch.no_grad()
    def table(self, target: int) -> np.ndarray:
        """``pi(a | s, G = target)`` for every state, as an ``(S, A)`` NumPy table."""
        s = torch.arange(self.n_states)
        g = torch.full_like(s, target)
        return torch.softmax(self.forward(s, g).float(), -1).cpu().numpy().astype(np.float64)


def rcsl_loss(model: ReturnConditionedPolicy, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. ``rcsl-loss``: negative log-likelihood of the logged action given (s, G)."""
    s, a, G, w = batch
    logits = model(s, G)  # (B, A)
    loss = (w * F.cross_entropy(logits.float(), a, reduction="none")).sum()
    return loss, {"nll": loss.item()}


# ---------------------------------------------------------------------- run
@dataclass
class RCSLResult:
    """A trained RCSL policy, its data, and target vs achieved return."""

    model: ReturnConditionedPolicy
    env: Any
    data: Steps
    history: History
    target: int      # the return it was conditioned on (the highest in the data)
    achieved: float  # exact expected return when acting with pi(. | s, target)
    probs: np.ndarray  # pi(a | s, target) table, (S, A)


def train_rcsl(cfg: OfflineConfig, data=None) -> RCSLResult:
    """Fit Eq. ``rcsl-loss`` on the offline data, then condition on the highest return seen.

    ``data`` may be ``(env, steps)`` to reuse a dataset; otherwise it is made from ``cfg``.
    """
    env, steps = data if data is not None else make_dataset(cfg)
    with one_thread():
        torch.manual_seed(cfg.seed)
        model = ReturnConditionedPolicy(steps.n_states, steps.n_returns, steps.n_actions,
                                        cfg.n_hidden)
        history = train(model, cfg, batch_sampler(steps, cfg.batch_size), rcsl_loss,
                        desc="RCSL")
        model.cpu()
        target = int(steps.G.max())
        probs = model.table(target)
    return RCSLResult(model, env, steps, history, target, policy_value(env, probs), probs)


def target_sweep(result: RCSLResult) -> tuple[np.ndarray, np.ndarray]:
    """Condition on every return 0 .. max seen; return (targets, exact achieved returns)."""
    targets = np.arange(result.data.n_returns)
    achieved = np.array([policy_value(result.env, result.model.table(int(g))) for g in targets])
    return targets, achieved


def main(argv: list[str] | None = None) -> RCSLResult:
    cfg = OfflineConfig.cli(argv, description="Return-conditioned supervised learning (RCSL).")
    result = train_rcsl(cfg)
    print(f"{cfg.env}: conditioned on return {result.target}, "
          f"achieved {result.achieved:.3f} (final nll {result.history.last('nll'):.3f})")
    return result


if __name__ == "__main__":
    run_cli(main)
