"""Learn reward weights from preferences under the partial-return or the regret model (chapter 4).

Given labelled segment pairs (:mod:`minimal.preferences`), fit the weights w
of a linear reward r_w = w . phi(s') by maximum likelihood under one of the
two preference models of chapter 4:

* partial return (eq. ``partial-return-model``): logistic regression on the
  difference of the segments' summed features, logit = (Phi(s1) - Phi(s2)) . w;
* regret (eq. ``regret-model``): logit = sum A*_w(s1) - sum A*_w(s2), where
  A*_w is the optimal advantage of the *candidate* reward w.  It is computed
  by :func:`optimal_advantage_torch`: value iteration in torch with a **hard
  max** finds the greedy policy, and V*_w is then re-solved from that
  policy's linear Bellman equation, which autograd differentiates (the exact
  gradient almost everywhere, since the greedy policy is locally constant in w).

Then value iteration on the learned reward gives a greedy policy, scored by
its true return scaled so that 1 is optimal and 0 is the uniform random
policy (eq. ``scaled-return``); "near-optimal" means a score >= 0.9.  Many
MDPs are fitted at once: every tensor carries a leading MDP axis B, the loss
is a sum of per-MDP losses, and Adam without gradient clipping keeps the B
fits independent of each other.

Run ``python -m minimal.reward_learning --preset laptop`` for the paper's
main comparison (regret-labelled data, both learners, several data sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.train import one_thread, resolve_device, train
from minimal.preferences import MODELS, Preferences, RewardMDP, make_preferences, random_mdp


# ------------------------------------------------------------------ config
@dataclass
class GridPreferenceConfig(TrainConfig):
    """What the learners of chapter 4 share: the random gridworlds, the segments, and
    full-batch training of small tables (a large learning rate, no weight decay, no clipping).

    ``gpu`` preset: for the laptop sizes on CUDA in bf16 (the tables are small either way).
    What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric
    reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    n_mdps: int = param(24, "random MDPs (reward functions and layouts)", gt=0)
    segment_length: int = param(3, "transitions per segment (typical 1 to 10)", gt=0)
    grid_size: int = param(5, "side of the square gridworld", ge=3)
    gamma: float = param(0.9, "discount for planning and scoring (value iteration's 10,000 "
                         "sweeps converge up to 0.995)", gt=0, le=0.995)
    data_seed: int = param(0, "seed of the MDPs and the preference data", ge=0)

    lr: float = TrainConfig.redefault("lr", 0.1)
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 10)
    weight_decay: float = TrainConfig.redefault("weight_decay", 0.0)
    grad_clip: float = TrainConfig.redefault("grad_clip", 0.0)
    log_every: int = TrainConfig.redefault("log_every", 20)
    progress: bool = TrainConfig.redefault("progress", False)


@dataclass
class RewardLearningConfig(GridPreferenceConfig):
    """Regret vs partial-return reward learning on random gridworlds.

    ``laptop``: 24 random 5x5 MDPs, 4 dataset sizes, about 5 s on 2 CPU
    cores; near-optimal fraction 0.29/0.71/0.67/0.92 (partial return) against
    0.42/0.92/1.00/1.00 (regret) at 10/30/100/300 pairs (data seed 0).  ``gpu``:
    200 MDPs and sizes up to 3000 pairs (CUDA; value iteration stays in float32
    under bf16 autocast).
    """

    sizes: str = param("10,30,100,300", "comma-separated numbers of preference pairs per MDP")
    vi_sweeps: int = param(60, "value-iteration sweeps in the differentiable A*_w", gt=0)
    label_model: str = param("regret", "preference model that labels the data", choices=MODELS)
    steps: int = TrainConfig.redefault("steps", 200)

    presets: ClassVar = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "n_mdps": 200,
                "sizes": "10,30,100,300,1000,3000", "steps": 400, "warmup_steps": 20,
                "log_every": 50, "ckpt_dir": "checkpoints/reward_learning", "ckpt_every": 200},
    }

    def size_list(self) -> list[int]:
        try:
            sizes = [int(x) for x in self.sizes.split(",")]
        except ValueError:
            self.fail(f"sizes = {self.sizes!r} is not a comma-separated list of integers")
        if not sizes or min(sizes) <= 0:
            self.fail(f"sizes = {self.sizes!r} must list positive integers")
        return sizes

    def check(self) -> None:
        super().check()
        self.size_list()




# ------------------------------------------------------- batched tensors
@dataclass
class PreferenceBatch:
    """B MDPs' preference data as tensors (one dataset of N pairs per MDP).

    ``P`` (B, S, A, S), ``Phi`` (B, S, d), ``terminal`` (B, S); for each side
    j in (1, 2): ``states{j}`` (B, N, k), ``actions{j}`` (B, N, k), ``live{j}``
    (B, N, k), ``phi{j}`` (B, N, d); ``y`` (B, N) is 1 when side 1 was preferred.
    """

    P: torch.Tensor
    Phi: torch.Tensor
    terminal: torch.Tensor
    states1: torch.Tensor
    actions1: torch.Tensor
    live1: torch.Tensor
    phi1: torch.Tensor
    states2: torch.Tensor
    actions2: torch.Tensor
    live2: torch.Tensor
    phi2: torch.Tensor
    y: torch.Tensor

    @staticmethod
    def stack(mdps: list[RewardMDP], data: list[Preferences], device="cpu") -> "PreferenceBatch":
        if len(mdps) != len(data) or not mdps:
            raise ValueError(f"need one dataset per MDP, got {len(mdps)} MDPs and {len(data)} datasets")
        if len({m.P.shape for m in mdps}) != 1 or len({len(d) for d in data}) != 1:
            raise ValueError("all MDPs must have the same size and all datasets the same length")

        def t(xs, dtype=torch.float32):
            return torch.as_tensor(np.stack(xs), dtype=dtype, device=device)

        return PreferenceBatch(
            t([m.P for m in mdps]), t([m.Phi for m in mdps]), t([m.terminal for m in mdps], torch.bool),
            t([d.seg1.states[:, :-1] for d in data], torch.long),
            t([d.seg1.actions for d in data], torch.long),
            t([d.seg1.live for d in data]), t([d.seg1.phi_sum for d in data]),
            t([d.seg2.states[:, :-1] for d in data], torch.long),
            t([d.seg2.actions for d in data], torch.long),
            t([d.seg2.live for d in data]), t([d.seg2.phi_sum for d in data]),
            t([d.y for d in data]))


# --------------------------------------------------- differentiable planning
def optimal_advantage_torch(P, Phi, terminal, w, gamma: float, sweeps: int) -> torch.Tensor:
    """A*_w (B, S, A) of the candidate rewards w (B, d), differentiable in w.

    Hard max, in two steps.  (1) Without gradients, ``sweeps`` sweeps of value
    iteration V <- max_a [R_w + gamma P V] find the greedy (optimal) policy
    pi*_w.  (2) With gradients, V*_w is the solution of the *linear* Bellman
    equation of that policy, V = R_pi + gamma P_pi V (eq. ``vstar-linear``).
    The greedy policy does not change under a small change of w (almost
    everywhere), so differentiating this solve gives the exact gradient of
    V*_w, at the cost of one batched (S x S) solve instead of backpropagating
    through every sweep.  Runs in float32 even under bf16 autocast: rounding
    would blur advantages that differ by a fraction of a step cost.
    """
    with torch.autocast(P.device.type, enabled=False):
        B, S, nA, _ = P.shape
        P_flat = P.reshape(B, S * nA, S)  # (B, S*A, S)
        r_next = (Phi @ w.to(Phi.dtype)[..., None]).squeeze(-1)  # (B, S) reward for entering each state
        R = torch.bmm(P_flat, r_next[..., None]).reshape(B, S, nA)  # (B, S, A)
        R = R.masked_fill(terminal[..., None], 0.0)  # absorbing terminal states pay nothing
        with torch.no_grad():  # (1) value iteration, only to find pi*_w
            V = torch.zeros(B, S, 1, dtype=R.dtype, device=P.device)  # (B, S, 1)
            for _ in range(sweeps):
                V = (R + gamma * torch.bmm(P_flat, V).reshape(B, S, nA)).amax(-1, keepdim=True)
            pi = (R + gamma * torch.bmm(P_flat, V).reshape(B, S, nA)).argmax(-1)  # (B, S)
        # (2) V*_w = (I - gamma P_pi)^-1 R_pi, differentiable in w through R
        P_pi = P.gather(2, pi[:, :, None, None].expand(B, S, 1, S)).squeeze(2)  # (B, S, S)
        R_pi = R.gather(2, pi[..., None])  # (B, S, 1)
        eye = torch.eye(S, dtype=R.dtype, device=P.device).expand(B, S, S)
        V = torch.linalg.solve(eye - gamma * P_pi, R_pi)  # (B, S, 1)
        Q = R + gamma * torch.bmm(P_flat, V).reshape(B, S, nA)  # (B, S, A)
        return Q - V  # (B, S, A)


def summed_advantage_torch(A, states, actions, live) -> torch.Tensor:
    """sum_t A[b, s_t, a_t] over live steps: (B, S, A), (B, N, k) x3 -> (B, N)."""
    B, S, nA = A.shape
    idx = (states * nA + actions).reshape(B, -1)  # (B, N*k) flat (s, a) index
    return (A.reshape(B, S * nA).gather(1, idx).reshape(states.shape) * live).sum(-1)


class LinearReward(nn.Module):
    """One weight vector per MDP: w (B, d), starting at zero (no preference for anything)."""

    def __init__(self, n_mdps: int, n_features: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n_mdps, n_features))  # (B, d)


def preference_logits(w, batch: PreferenceBatch, model: str, gamma: float, sweeps: int):
    """logit of P(sigma_1 > sigma_2) under ``model`` for every pair; (B, N)."""
    if model == "partial_return":  # eq. partial-return-model: a difference of partial returns
        return ((batch.phi1 - batch.phi2) @ w[..., None]).squeeze(-1)  # (B, N)
    if model == "regret":  # eq. regret-model: a difference of summed optimal advantages
        A = optimal_advantage_torch(batch.P, batch.Phi, batch.terminal, w, gamma, sweeps)
        return (summed_advantage_torch(A, batch.states1, batch.actions1, batch.live1)
                - summed_advantage_torch(A, batch.states2, batch.actions2, batch.live2))
    raise ValueError(f"unknown preference model {model!r}; choose one of {MODELS}")


def fit_reward(mdps: list[RewardMDP], data: list[Preferences], model: str,
               cfg: RewardLearningConfig, desc: str = "reward") -> np.ndarray:
    """Maximum-likelihood weights under ``model`` for each MDP's data; returns (B, d)."""
    if model not in MODELS:
        raise ValueError(f"unknown preference model {model!r}; choose one of {MODELS}")
    device = resolve_device(cfg.device)
    batch = PreferenceBatch.stack(mdps, data, device)
    reward = LinearReward(len(mdps), batch.Phi.shape[-1])

    def loss_fn(reward, batch):
        logits = preference_logits(reward.w, batch, model, cfg.gamma, cfg.vi_sweeps)  # (B, N)
        nll = F.binary_cross_entropy_with_logits(logits.float(), batch.y, reduction="none")
        return nll.mean(1).sum(), {"nll": nll.mean().item()}  # a sum keeps the B fits separate

    with one_thread():
        train(reward, cfg, lambda gen: batch, loss_fn, desc=desc)
    return reward.w.detach().float().cpu().numpy()


def policy_scores(mdps: list[RewardMDP], W: np.ndarray) -> np.ndarray:
    """Scaled true return (eq. ``scaled-return``) of the greedy policy of each learned w; (B,)."""
    return np.array([m.scaled_return(m.greedy_policy(w)) for m, w in zip(mdps, W)])


# --------------------------------------------------------------- experiment
@dataclass
class ComparisonResult:
    sizes: list[int]
    scores: dict[str, np.ndarray]  # model -> (len(sizes), n_mdps) scaled returns

    def near_optimal(self, model: str, threshold: float = 0.9) -> np.ndarray:
        """Fraction of MDPs whose learned reward gives a near-optimal policy, per size."""
        return (self.scores[model] >= threshold).mean(1)


def random_mdps(cfg: RewardLearningConfig) -> list[RewardMDP]:
    rng = np.random.default_rng(cfg.data_seed)
    return [random_mdp(rng, size=cfg.grid_size, gamma=cfg.gamma) for _ in range(cfg.n_mdps)]


def regret_datasets(mdps: list[RewardMDP], n: int, cfg: RewardLearningConfig) -> list[Preferences]:
    """n labelled pairs per MDP, from one generator seeded by ``cfg.data_seed + 1``.

    Datasets of different n are not nested; take nested subsets of one large
    dataset with ``subset`` instead (as ``compare_preference_models`` does).
    """
    rng = np.random.default_rng(cfg.data_seed + 1)
    return [make_preferences(m, n, cfg.label_model, rng, cfg.segment_length) for m in mdps]


def subset(d: Preferences, n: int) -> Preferences:
    return Preferences(d.seg1[:n], d.seg2[:n], d.y[:n])


def compare_preference_models(cfg: RewardLearningConfig) -> ComparisonResult:
    """For each dataset size, fit both models on the same data and score the greedy policies."""
    sizes = cfg.size_list()
    mdps = random_mdps(cfg)
    full = regret_datasets(mdps, max(sizes), cfg)
    scores = {m: np.zeros((len(sizes), len(mdps))) for m in MODELS}
    jobs = [(i, n, m) for i, n in enumerate(sizes) for m in MODELS]
    for i, n, model in tqdm(jobs, desc="fits", leave=False):
        fit_cfg = cfg.replace(**cfg.stage_checkpoints(f"{model}_n{n}"))
        W = fit_reward(mdps, [subset(d, n) for d in full], model, fit_cfg, desc=f"{model} n={n}")
        scores[model][i] = policy_scores(mdps, W)
    return ComparisonResult(sizes, scores)


def main(argv: list[str] | None = None) -> ComparisonResult:
    cfg = RewardLearningConfig.cli(argv)
    res = compare_preference_models(cfg)
    print(f"{cfg.n_mdps} random MDPs, preferences labelled by the {cfg.label_model} model")
    print("pairs   near-optimal (score >= 0.9): partial return | regret")
    for i, n in enumerate(res.sizes):
        print(f"{n:5d}   {res.near_optimal('partial_return')[i]:.2f} | {res.near_optimal('regret')[i]:.2f}")
    return res


if __name__ == "__main__":
    run_cli(main)
