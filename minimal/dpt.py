"""Decision-Pretrained Transformer (DPT) for multi-armed bandits.

Chapter "In-context decision making", section "Decision-Pretrained
Transformers".  DPT (Lee et al., 2023) is trained by plain supervised
learning: sample a bandit task, sample an in-context dataset of (action,
reward) pairs from it, and train a transformer to predict the task's *optimal*
arm from every prefix of the dataset (eq. ``dpt-loss``),

    L(theta) = - E_{tau, D ~ p} sum_{j=0}^{n} log M_theta(a*(tau) | D_{<=j}).

At test time no gradient step is taken.  *Online* (eq. ``dpt-online``) the
model acts on its own history, sampling a_t ~ M_theta(. | D_{<t}); *offline*
it acts once from a fixed dataset, taking the most likely arm.

Reading order: :class:`DPTConfig` (presets and CLI), :class:`BanditTransformer`
(the shared tiny GPT of :mod:`minimal.core.gpt` reading continuous (action, reward)
inputs), :func:`sample_pretraining_batch`, :func:`sequence_loss`,
:func:`train_dpt`, then the two deployments :func:`run_agent` and
:func:`offline_choice`, and the experiments the notebook and tests share, among them
:func:`bayes_offline_comparison`, which measures DPT against the exact posterior
P(a* = a | D) of the task prior (:func:`minimal.bandit_algorithms.best_arm_posterior`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minimal.bandit_algorithms import (
    Trajectory,
    best_arm_posterior,
    check_horizon,
    compare_baselines,
    history_statistics,
)
from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT, GPTConfig, check_heads_divide_width
from minimal.core.seeding import seed_everything
from minimal.core.train import History, resolve_device, train
from minimal.worlds.bandits import Bandit, sample_bandits


# -------------------------------------------------------------------- config
@dataclass
class DPTConfig(TrainConfig):
    """Pretrain a DPT on sampled Gaussian bandits (arm means uniform in [0, 1]).

    ``laptop``: 5 arms, horizon 50, a 2-layer 64-wide transformer (0.1M
    parameters), 1000 steps of 64 fresh tasks, about 30 s on 2 CPU cores;
    online regret about 1.1-1.25 times Thompson sampling's at H = 50.
    ``gpu``: the paper's horizon 500, 4 layers and 4 heads, 20k steps, bf16.

    ``gpu`` preset: for the paper's horizon 500 with 4 layers and 4 heads, 20k steps.  What
    it delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric
    reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    n_arms: int = param(5, "arms K of every bandit (the paper uses 5)", ge=2)
    horizon: int = param(50, "in-context dataset length n = online horizon H (paper: 500)", gt=1)
    noise: float = param(0.3, "std of the Gaussian reward noise (paper: 0.3)", gt=0)
    n_layer: int = param(2, "transformer blocks", gt=0)
    n_head: int = param(4, "attention heads per block", gt=0)
    n_embd: int = param(64, "residual-stream width; divisible by n_head", gt=0)
    onehot_mix: float = param(1.0, "max weight w on a one-hot arm in the behaviour policy "
                                   "p = (1-w) Dirichlet(1) + w e_k (0 to 1)", ge=0, le=1)

    # the laptop preset's training settings are this config's defaults
    steps: int = TrainConfig.redefault("steps", 1000)
    batch_size: int = TrainConfig.redefault("batch_size", 64)
    lr: float = TrainConfig.redefault("lr", 0.002)
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 50)
    log_every: int = TrainConfig.redefault("log_every", 20)

    presets: ClassVar = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "horizon": 500, "n_layer": 4,
                "n_head": 4, "n_embd": 128, "steps": 20000, "batch_size": 128, "lr": 3e-4,
                "warmup_steps": 500, "log_every": 100, "ckpt_dir": "checkpoints/dpt",
                "ckpt_every": 2000},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)

    def model_config(self) -> GPTConfig:
        # vocab_size = K: the tied output head of GPT scores the K arms
        return GPTConfig(vocab_size=self.n_arms, block_size=self.horizon + 1,
                         n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd)


# --------------------------------------------------------------------- model
class BanditTransformer(nn.Module):
    """The shared :class:`minimal.core.gpt.GPT` reading a history of (action, reward) pairs.

    Position 0 holds a learned *start* vector (the empty history); position
    j >= 1 holds a linear embedding of [one_hot(a_j), r_j * one_hot(a_j)]: the
    same information as (a_j, r_j), with the reward written into the pulled
    arm's slot so that averaging over positions (what one attention head does
    easily) yields every arm's pull count and reward sum.  GPT's position
    table, blocks and final norm are reused as they are; its tied output head
    (vocabulary = the K arms) turns the feature at position j into logits
    for the action to take after seeing the first j interactions.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_arms = cfg.vocab_size
        self.gpt = GPT(cfg)
        self.embed = nn.Linear(2 * self.n_arms, cfg.n_embd)  # [one_hot(a), r one_hot(a)] -> C
        self.start = nn.Parameter(torch.zeros(cfg.n_embd))

    @property
    def max_history(self) -> int:
        return self.gpt.cfg.block_size - 1

    def forward(self, actions: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        """Logits (B, j+1, K) for histories ``actions`` (B, j) long and ``rewards`` (B, j)."""
        if actions.dim() != 2 or actions.shape != rewards.shape:
            raise ValueError(f"actions and rewards must both be (B, T); got "
                             f"{tuple(actions.shape)} and {tuple(rewards.shape)}")
        B, T = actions.shape
        if T > self.max_history:
            raise ValueError(f"history of {T} steps exceeds the model's {self.max_history}")
        if T and (actions.min() < 0 or actions.max() >= self.n_arms):
            raise ValueError(f"actions must be arm indices in [0, {self.n_arms})")
        onehot = F.one_hot(actions, self.n_arms).float()  # (B, T, K)
        inputs = torch.cat([onehot, rewards.float().unsqueeze(-1) * onehot], -1)  # (B, T, 2K)
        x = torch.cat([self.start.expand(B, 1, -1), self.embed(inputs)], 1)  # (B, T+1, C)
        pos = torch.arange(T + 1, device=x.device)  # (T+1,)
        x = x + self.gpt.pos_emb(pos)  # (B, T+1, C)
        for block in self.gpt.blocks:  # steering hooks attach to these (minimal.steering)
            x = block(x)
        return self.gpt.head(self.gpt.ln_f(x))  # (B, T+1, K)


def sequence_loss(model: BanditTransformer, actions, rewards, targets):
    """Cross-entropy of ``targets`` (B, P) at the first P positions (eq. ``dpt-loss``).

    DPT's target is the optimal arm repeated at every position; algorithm
    distillation's target at position j is the teacher's next action a_{j+1}.
    """
    logits = model(actions, rewards)  # (B, T+1, K)
    P = targets.shape[1]
    if P > logits.shape[1]:
        raise ValueError(f"{P} targets but only {logits.shape[1]} positions")
    logits = logits[:, :P]  # (B, P, K)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
    acc = (logits.argmax(-1) == targets).float().mean().item()
    return loss, {"accuracy": acc}


# ---------------------------------------------------------------------- data
def behaviour_probs(batch: int, n_arms: int, onehot_mix: float,
                    gen: torch.Generator) -> torch.Tensor:
    """Random data-collection policies p = (1-w) Dirichlet(1) + w e_k, (B, K).

    Dirichlet(1) gives datasets of every balance; the one-hot part with
    w ~ U[0, onehot_mix] adds the skewed datasets that online histories
    look like once an agent commits to one arm.
    """
    expo = -torch.log(torch.rand(batch, n_arms, generator=gen).clamp_min(1e-12))  # (B, K)
    dirichlet = expo / expo.sum(1, keepdim=True)  # Dirichlet(1, ..., 1) samples
    k = torch.randint(n_arms, (batch,), generator=gen)  # (B,)
    w = onehot_mix * torch.rand(batch, 1, generator=gen)  # (B, 1)
    return (1 - w) * dirichlet + w * F.one_hot(k, n_arms).float()


def sample_pretraining_batch(cfg: DPTConfig, gen: torch.Generator):
    """Fresh tasks and in-context datasets with the optimal arm as label.

    Returns actions (B, n), rewards (B, n), and targets (B, n+1) = a* at every position.
    """
    B, K, n = cfg.batch_size, cfg.n_arms, cfg.horizon
    means = torch.rand(B, K, generator=gen)  # (B, K): mu_a ~ U[0, 1]
    probs = behaviour_probs(B, K, cfg.onehot_mix, gen)  # (B, K)
    actions = torch.multinomial(probs, n, replacement=True, generator=gen)  # (B, n)
    rewards = means.gather(1, actions) + cfg.noise * torch.randn(B, n, generator=gen)  # (B, n)
    targets = means.argmax(1, keepdim=True).expand(B, n + 1)  # (B, n+1)
    return actions, rewards, targets


@dataclass
class TrainedAgent:
    model: BanditTransformer
    cfg: TrainConfig
    history: History


def train_sequence_model(cfg, get_batch, desc: str) -> TrainedAgent:
    """Build the transformer for ``cfg`` and fit it with the shared loop."""
    seed_everything(cfg.seed)
    model = BanditTransformer(cfg.model_config())
    device = resolve_device(cfg.device)

    def batch_on_device(gen):
        return tuple(x.to(device) for x in get_batch(gen))

    def loss_fn(model, batch):
        return sequence_loss(model, *batch)

    history = train(model, cfg, batch_on_device, loss_fn, desc=desc)
    return TrainedAgent(model.cpu().float(), cfg, history)


def train_dpt(cfg: DPTConfig) -> TrainedAgent:
    """Supervised pretraining of eq. ``dpt-loss`` on fresh sampled tasks every step."""
    return train_sequence_model(cfg, lambda gen: sample_pretraining_batch(cfg, gen), "DPT")


# ---------------------------------------------------------------- deployment
@dataclass
class AgentRollout(Trajectory):
    """A :class:`Trajectory` plus the agent's action distributions, probs (N, H, K)."""

    probs: np.ndarray = None

    def entropy(self) -> np.ndarray:
        """Entropy (nats) of the action distribution at each step, (N, H)."""
        p = np.clip(self.probs, 1e-12, 1)
        return -(p * np.log(p)).sum(-1)


@torch.no_grad()
def run_agent(model: BanditTransformer, bandit: Bandit, horizon: int, seed: int = 0,
              greedy: bool = False, temperature: float = 1.0) -> AgentRollout:
    """Online deployment (eq. ``dpt-online``): the model acts on its own growing history.

    At step t the model reads the t-1 interactions so far and samples
    a_t ~ softmax(logits / temperature) (``greedy=True`` takes the argmax instead;
    ``temperature`` > 1 flattens every decision, the control for steering).
    Rewards come from ``bandit``; all randomness from ``seed``.
    """
    check_horizon(horizon)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if horizon > model.max_history:
        raise ValueError(f"horizon {horizon} exceeds the model's context of "
                         f"{model.max_history} interactions")
    if bandit.n_arms != model.n_arms:
        raise ValueError(f"bandit has {bandit.n_arms} arms, the model was trained for "
                         f"{model.n_arms}")
    model.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    N = bandit.n_runs
    actions = torch.zeros(N, horizon, dtype=torch.long)
    rewards = torch.zeros(N, horizon)
    probs = torch.zeros(N, horizon, model.n_arms)
    for t in range(horizon):
        logits = model(actions[:, :t], rewards[:, :t])[:, -1].float()  # (N, K) after t steps
        p = F.softmax(logits / temperature, -1)  # (N, K)
        a = p.argmax(-1) if greedy else torch.multinomial(p, 1, generator=gen).squeeze(1)
        r = bandit.pull(a.numpy(), rng)  # (N,)
        actions[:, t], rewards[:, t], probs[:, t] = a, torch.from_numpy(r).float(), p
    return AgentRollout(actions.numpy(), rewards.numpy().astype(float), bandit.means.copy(),
                        probs=probs.numpy().astype(float))


@torch.no_grad()
def offline_choice(model: BanditTransformer, actions: np.ndarray,
                   rewards: np.ndarray) -> np.ndarray:
    """Offline deployment: the most likely optimal arm given a fixed dataset (N, n) -> (N,)."""
    logits = model(torch.as_tensor(actions, dtype=torch.long),
                   torch.as_tensor(rewards, dtype=torch.float32))[:, -1]  # (N, K)
    return logits.argmax(-1).numpy()


@torch.no_grad()
def predicted_best_arm(model: BanditTransformer, actions: np.ndarray,
                       rewards: np.ndarray) -> np.ndarray:
    """The model's distribution pi_theta(. | C) over the optimal arm after the whole dataset, (N, K)."""
    logits = model(torch.as_tensor(actions, dtype=torch.long),
                   torch.as_tensor(rewards, dtype=torch.float32))[:, -1]  # (N, K)
    return F.softmax(logits.float(), -1).numpy().astype(float)


def empirical_mean_choice(actions: np.ndarray, rewards: np.ndarray, n_arms: int) -> np.ndarray:
    """The arm with the best empirical mean among the arms in the dataset, (N,)."""
    counts, sums = history_statistics(actions, rewards, n_arms)  # (N, K) each
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)  # (N, K)
    return mean.argmax(1)


# --------------------------------------------------------------- experiments
def online_comparison(agent: TrainedAgent, n_runs: int = 300, seed: int = 100
                      ) -> dict[str, Trajectory]:
    """DPT and the baselines of :mod:`minimal.worlds.bandits` on the same test bandits."""
    cfg = agent.cfg
    out = compare_baselines(n_runs, cfg.n_arms, cfg.horizon, "gaussian", cfg.noise, seed)
    bandit = sample_bandits(n_runs, cfg.n_arms, np.random.default_rng(seed), "gaussian",
                            cfg.noise)
    out["DPT"] = run_agent(agent.model, bandit, cfg.horizon, seed=seed)
    return out


def final_regret(trajectories: dict[str, Trajectory]) -> dict[str, float]:
    """Mean cumulative regret at the horizon of each method."""
    return {name: float(tr.cumulative_regret()[:, -1].mean()) for name, tr in trajectories.items()}


def offline_comparison(agent: TrainedAgent, sizes=(5, 10, 20, 40), n_runs: int = 2000,
                       seed: int = 200) -> dict[str, list[float]]:
    """Best-arm rate of DPT vs empirical-mean greedy on fixed datasets of each size.

    Datasets come from the pretraining distribution of behaviour policies.
    """
    cfg = agent.cfg
    if max(sizes) > agent.model.max_history:
        raise ValueError(f"dataset sizes {sizes} exceed the model's context "
                         f"{agent.model.max_history}")
    out = {"sizes": list(sizes), "DPT": [], "empirical mean": []}
    for actions, rewards, means_best in offline_datasets(cfg, sizes, n_runs, seed):
        out["DPT"].append(float((offline_choice(agent.model, actions, rewards)
                                 == means_best).mean()))
        emp = empirical_mean_choice(actions.numpy(), rewards.numpy(), cfg.n_arms)
        out["empirical mean"].append(float((emp == means_best).mean()))
    return out


def offline_datasets(cfg: DPTConfig, sizes, n_runs: int, seed: int):
    """The fixed offline datasets, one batch per size, from one generator seeded ``seed``.

    Yields (actions (N, n), rewards (N, n), the optimal arm (N,)) per size; the same
    seed gives the same datasets to :func:`offline_comparison` and
    :func:`bayes_offline_comparison`.
    """
    gen = torch.Generator().manual_seed(seed)
    for n in sizes:
        data_cfg = cfg.replace(batch_size=n_runs, horizon=n, progress=False)
        actions, rewards, targets = sample_pretraining_batch(data_cfg, gen)
        yield actions, rewards, targets[:, 0].numpy()


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance 0.5 sum_a |p_a - q_a| between rows of p and q (N, K), (N,)."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(-1)


def bayes_offline_comparison(agent: TrainedAgent, sizes=(5, 10, 20, 40), n_runs: int = 2000,
                             seed: int = 200) -> dict:
    """DPT's prediction against the exact posterior of the task prior, on fixed datasets.

    For each size, on the datasets of :func:`offline_comparison` (same ``seed``):

    * ``TV``: mean total variation between pi_theta(. | C) and the exact
      P(a* = . | C) of eq. ``best-arm-posterior``;
    * ``DPT`` and ``Bayes``: how often DPT's argmax and the exact posterior's argmax
      (the Bayes-optimal choice) pick the optimal arm;
    * ``ceiling`` (and its standard error ``ceiling_se``): E[max_a P(a* = a | C)],
      the Bayes-optimal best-arm rate as an expectation over datasets, so without the
      noise of which arm happened to be best;
    * ``DPT expected``: E[P(a* = DPT's arm | C)], DPT's best-arm rate computed the same
      way; it is at most ``ceiling`` on every dataset, so their difference measures what
      DPT's choices lose against the Bayes-optimal ones, free of that noise;
    * ``DPT absent`` and ``Bayes absent``: the fraction of datasets in which the
      chosen arm was never pulled in the dataset.

    ``dpt_probs`` and ``posterior`` keep the two distributions (N, K) per size.
    """
    cfg = agent.cfg
    keys = ("TV", "DPT", "Bayes", "ceiling", "ceiling_se", "DPT expected", "DPT absent",
            "Bayes absent", "dpt_probs", "posterior")
    out = {"sizes": list(sizes), **{k: [] for k in keys}}
    for actions, rewards, best in offline_datasets(cfg, sizes, n_runs, seed):
        probs = predicted_best_arm(agent.model, actions, rewards)  # (N, K)
        counts, sums = history_statistics(actions.numpy(), rewards.numpy(), cfg.n_arms)
        post = best_arm_posterior(counts, sums, cfg.noise)  # (N, K)
        rows = np.arange(len(best))
        dpt_arm, bayes_arm = probs.argmax(1), post.argmax(1)
        top = post.max(1)
        out["TV"].append(float(total_variation(probs, post).mean()))
        out["DPT"].append(float((dpt_arm == best).mean()))
        out["Bayes"].append(float((bayes_arm == best).mean()))
        out["ceiling"].append(float(top.mean()))
        out["ceiling_se"].append(float(top.std() / np.sqrt(len(top))))
        out["DPT expected"].append(float(post[rows, dpt_arm].mean()))
        out["DPT absent"].append(float((counts[rows, dpt_arm] == 0).mean()))
        out["Bayes absent"].append(float((counts[rows, bayes_arm] == 0).mean()))
        out["dpt_probs"].append(probs)
        out["posterior"].append(post)
    return out


def main(argv: list[str] | None = None) -> None:
    cfg = DPTConfig.cli(argv)
    agent = train_dpt(cfg)
    print(f"parameters: {sum(p.numel() for p in agent.model.parameters()):,}")
    print(f"final loss {agent.history.last('loss'):.3f}, "
          f"accuracy {agent.history.last('accuracy'):.3f}")
    runs = 64 if cfg.device == "cpu" else 500
    regret = final_regret(online_comparison(agent, n_runs=runs))
    print("regret at the horizon: " + ", ".join(f"{k} {v:.2f}" for k, v in regret.items()))


if __name__ == "__main__":
    run_cli(main)
