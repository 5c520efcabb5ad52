"""Two toy illustrations of networks as rational models of behaviour.

Chapter 5, section "Rational models of behaviour" (``rational_models_of_behaviour``).
Both are *illustrations* of an idea from a paper, at toy scale, not
reproductions:

1. **Arithmetic first, choices for free** (after Zhu et al., 2024).  An MLP is
   trained only to compute the expected value of a gamble, ``v(p, x) = p * x``
   (eq. ``rc-ev``).  With no choice data at all, it then chooses between two
   gambles by comparing its own values (eq. ``rc-choice``).
2. **Reporting hidden weights** (after Plunkett et al., 2025).  A linear-utility
   chooser is trained on choices made with hidden attribute weights ``w``
   (eq. ``rc-logit``); its own parameters, normalised, are read out as its
   "reported" weights and compared with ``w`` (eq. ``rc-report``).

Both trainers use :func:`minimal.core.train.train`; :class:`ChoiceConfig` holds the
fields of both.  ``python -m minimal.rational_choice --preset laptop`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.train import History, one_thread, train


@dataclass
class ChoiceConfig(TrainConfig):
    """Both toy demos: the EV network and the weight-reporting chooser.

    ``gpu`` preset: for both demos with batches of 4096 and 200k evaluation pairs.  What it
    delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric reached)
    is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    hidden: int = param(32, "width of the EV network's two hidden layers", gt=0)
    n_eval_pairs: int = param(10_000, "gamble pairs on which choices are scored", gt=0)
    n_attributes: int = param(5, "attributes per option in the weight demo", ge=2)
    n_choices: int = param(2_000, "observed choices the chooser is trained on", gt=0)
    beta: float = param(5.0, "inverse temperature of the hidden chooser (eq. rc-logit)", gt=0)

    # the laptop preset's training settings are this config's defaults
    steps: int = TrainConfig.redefault("steps", 300)
    batch_size: int = TrainConfig.redefault("batch_size", 256)
    lr: float = TrainConfig.redefault("lr", 0.01)
    log_every: int = TrainConfig.redefault("log_every", 50)

    presets: ClassVar[dict] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "steps": 5_000, "batch_size": 4096,
                "lr": 3e-3, "hidden": 256, "n_eval_pairs": 200_000, "n_choices": 50_000,
                "n_attributes": 8, "log_every": 100, "ckpt_dir": "checkpoints/rational_choice"},
    }


def _subdir(cfg: ChoiceConfig, name: str) -> ChoiceConfig:
    """Each trained model checkpoints into its own folder under ``cfg.ckpt_dir``."""
    return cfg.replace(**cfg.stage_checkpoints(name))


# --------------------------------------------------------------- demo 1: EV arithmetic
def sample_gambles(n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` gambles "win x with probability p", p and x uniform on [0, 1].  Shape (n, 2)."""
    if n <= 0:
        raise ValueError(f"need a positive number of gambles, got n = {n}")
    return torch.rand(n, 2, generator=gen)  # (n, 2): columns p, x


def expected_value(g: torch.Tensor) -> torch.Tensor:
    """Eq. ``rc-ev``: v = p * x for gambles of shape (..., 2)."""
    if g.shape[-1] != 2:
        raise ValueError(f"gambles must have last dimension 2 (p, x), got shape {tuple(g.shape)}")
    return g[..., 0] * g[..., 1]  # (...)


class ValueNet(nn.Module):
    """MLP (p, x) -> predicted expected value."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, g: torch.Tensor) -> torch.Tensor:  # (n, 2) -> (n,)
        return self.net(g).squeeze(-1)


def train_value_net(cfg: ChoiceConfig) -> tuple[ValueNet, History]:
    """Regress p * x on random gambles: the network sees arithmetic only, never a choice."""
    torch.manual_seed(cfg.seed)
    model = ValueNet(cfg.hidden)

    def get_batch(gen):
        g = sample_gambles(cfg.batch_size, gen)  # (B, 2)
        return g, expected_value(g)  # (B, 2), (B,)

    def loss_fn(model, batch):
        g, v = batch
        dev = next(model.parameters()).device
        loss = F.mse_loss(model(g.to(dev)).float(), v.to(dev))
        return loss, {"rmse": loss.sqrt().item()}

    history = train(model, _subdir(cfg, "value_net"), get_batch, loss_fn, desc="EV arithmetic")
    return model.cpu(), history


@dataclass
class ChoiceScores:
    """How often each rule picks the gamble with the larger expected value."""

    network: float        # compare the network's own values (eq. rc-choice)
    larger_payoff: float  # heuristic: pick the larger x
    higher_prob: float    # heuristic: pick the larger p
    value_rmse: float     # the network's arithmetic error on held-out gambles
    dEV: np.ndarray       # (n,) true EV(A) - EV(B)
    dV: np.ndarray        # (n,) network's v(A) - v(B)


def score_choices(model: ValueNet, n_pairs: int, seed: int) -> ChoiceScores:
    """Choices between fresh gamble pairs A, B, scored against expected value."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    A, B = sample_gambles(n_pairs, gen), sample_gambles(n_pairs, gen)  # (n, 2) each
    with torch.no_grad():
        vA, vB = model(A), model(B)  # (n,) each
    dEV = expected_value(A) - expected_value(B)  # (n,)
    ev_choice = dEV > 0
    rmse = torch.sqrt(torch.mean((vA - expected_value(A)) ** 2)).item()
    return ChoiceScores(
        network=((vA > vB) == ev_choice).float().mean().item(),
        larger_payoff=((A[:, 1] > B[:, 1]) == ev_choice).float().mean().item(),
        higher_prob=((A[:, 0] > B[:, 0]) == ev_choice).float().mean().item(),
        value_rmse=rmse, dEV=dEV.numpy(), dV=(vA - vB).numpy())


def soft_choice(dV: np.ndarray, tau: float) -> np.ndarray:
    """Eq. ``rc-choice`` with noise: P(choose A) = sigmoid((v_A - v_B) / tau)."""
    if tau <= 0:
        raise ValueError(f"temperature tau must be positive, got {tau}")
    return 1.0 / (1.0 + np.exp(-np.asarray(dV) / tau))


def psychometric(dEV: np.ndarray, p_choose_A: np.ndarray, bins: int = 15):
    """Mean P(choose A) in equal-width bins of the true EV difference: (centres, means)."""
    edges = np.linspace(-0.6, 0.6, bins + 1)
    idx = np.digitize(dEV, edges) - 1
    centres, means = [], []
    for b in range(bins):
        mask = idx == b
        if mask.sum() >= 20:
            centres.append(0.5 * (edges[b] + edges[b + 1]))
            means.append(p_choose_A[mask].mean())
    return np.array(centres), np.array(means)


def ev_demo(cfg: ChoiceConfig) -> tuple[ChoiceScores, History]:
    """Train on arithmetic, then score choices: the experiment of demo 1."""
    with one_thread():  # tiny model: extra threads only add overhead
        model, history = train_value_net(cfg)
    return score_choices(model, cfg.n_eval_pairs, cfg.seed), history


# --------------------------------------------------------------- demo 2: weight reports
def hidden_weights(n_attributes: int, seed: int) -> np.ndarray:
    """Random attribute weights, uniform on [-1, 1].  Shape (n_attributes,)."""
    if n_attributes < 2:
        raise ValueError(f"need at least 2 attributes, got {n_attributes}")
    return np.random.default_rng(30_000 + seed).uniform(-1, 1, n_attributes)


def simulate_choices(w: np.ndarray, n: int, beta: float, seed: int):
    """Options A, B with attributes uniform on [0, 1]; choose A with prob. from eq. ``rc-logit``.

    Returns (diff, chose_A): attribute differences a_A - a_B, shape (n, k), and 0/1 choices (n,).
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be a vector, got shape {w.shape}")
    rng = np.random.default_rng(40_000 + seed)
    diff = rng.uniform(0, 1, (n, w.size)) - rng.uniform(0, 1, (n, w.size))  # (n, k)
    p_A = 1.0 / (1.0 + np.exp(-beta * diff @ w))  # (n,)
    chose_A = (rng.uniform(size=n) < p_A).astype(np.float32)  # (n,)
    return torch.tensor(diff, dtype=torch.float32), torch.tensor(chose_A)


class LinearChooser(nn.Module):
    """Utility u(a) = theta . a; P(choose A) = sigmoid(u(a_A) - u(a_B))."""

    def __init__(self, n_attributes: int):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(n_attributes))

    def forward(self, diff: torch.Tensor) -> torch.Tensor:  # (n, k) -> (n,) logits
        return diff @ self.theta

    def report(self) -> np.ndarray:
        """Eq. ``rc-report``: the chooser's weights scaled to max |weight| = 1."""
        theta = self.theta.detach().float().cpu().numpy()
        return theta / np.abs(theta).max()


def train_chooser(cfg: ChoiceConfig, w: np.ndarray) -> LinearChooser:
    """Fit a chooser to ``cfg.n_choices`` choices made with hidden weights ``w``."""
    diff, chose_A = simulate_choices(w, cfg.n_choices, cfg.beta, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = LinearChooser(len(w))

    def get_batch(gen):
        i = torch.randint(0, cfg.n_choices, (cfg.batch_size,), generator=gen)  # (B,)
        return diff[i], chose_A[i]  # (B, k), (B,)

    def loss_fn(model, batch):
        d, y = batch
        dev = model.theta.device
        loss = F.binary_cross_entropy_with_logits(model(d.to(dev)).float(), y.to(dev))
        return loss, {}

    train(model, _subdir(cfg, f"chooser_{cfg.seed}"), get_batch, loss_fn, desc="chooser")
    return model.cpu()


@dataclass
class ReportScores:
    w: np.ndarray          # (k,) hidden weights of model 1
    w_other: np.ndarray    # (k,) hidden weights of model 2
    report: np.ndarray     # (k,) model 1's reported weights
    report_other: np.ndarray  # (k,) model 2's reported weights
    own: float             # mean Pearson r of each report with its own hidden weights
    crossed: float         # mean Pearson r of each report with the other model's weights


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def report_demo(cfg: ChoiceConfig) -> ReportScores:
    """Two choosers trained on two different hidden weight vectors; score their reports."""
    w = hidden_weights(cfg.n_attributes, 2 * cfg.seed)
    w_other = hidden_weights(cfg.n_attributes, 2 * cfg.seed + 1)
    with one_thread():
        r1 = train_chooser(cfg, w).report()
        r2 = train_chooser(cfg.replace(seed=cfg.seed + 1000), w_other).report()
    return ReportScores(w, w_other, r1, r2,
                        own=0.5 * (pearson(r1, w) + pearson(r2, w_other)),
                        crossed=0.5 * (pearson(r1, w_other) + pearson(r2, w)))


def main(argv: list[str] | None = None) -> None:
    """``python -m minimal.rational_choice --preset laptop --set seed=1``."""
    cfg = ChoiceConfig.cli(argv)
    scores, history = ev_demo(cfg)
    print(f"EV net: rmse {scores.value_rmse:.4f}; choices agree with EV: network "
          f"{scores.network:.3f}, larger payoff {scores.larger_payoff:.3f}, "
          f"higher probability {scores.higher_prob:.3f}")
    rep = report_demo(cfg)
    print(f"reported vs hidden weights: r(own) {rep.own:.3f}, r(other model's) {rep.crossed:.3f}")


if __name__ == "__main__":
    run_cli(main)
