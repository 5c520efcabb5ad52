"""Train the tiny GPT on a mixture of D urn tasks and watch which predictor it tracks.

Chapter "In-context learning as rational (Bayesian) inference", section
"Memorize or generalize?".  The network is the shared :class:`minimal.core.gpt.GPT`
trained with the shared loop :func:`minimal.core.train.train` on the next-symbol
loss (eq. ``next-token-loss``) over sequences from D fixed urns
(:mod:`minimal.worlds.icl_tasks`).  Every ``eval_every`` steps we freeze a snapshot
of its predictive distributions on held-out contexts from the same D urns and
measure (eq. ``icl-distance``)

    d_M = mean KL(M || net),   d_G = mean KL(G || net),

the mean running over contexts and positions.  ``d_M < d_G`` means the
network is closer to the memorizing predictor.

Reading order: :class:`ICLConfig` (presets and CLI), :func:`train_icl`
(data, loss, snapshots), :class:`ICLRun`, the sweep :func:`run_grid` and
:func:`main`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT, GPTConfig, check_heads_divide_width
from minimal.core.train import History, train
from minimal.worlds.icl_tasks import (
    generalizing_predictor,
    kl,
    memorizing_predictor,
    sample_sequences,
    sample_tasks,
)


@dataclass
class ICLConfig(TrainConfig):
    """Urn-mixture pretraining.  ``laptop``: 500 steps, a few seconds per run on 2 CPU cores.

    ``gpu`` preset: for the urn mixture with K = 8, 32-symbol contexts and a 4-layer GPT,
    20k steps.  What it delivers on an H100/H200-class GPU (wall time, throughput, memory,
    the metric reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    D: int = param(4, "number of training urns (task diversity), typical 1 to 1024", gt=0)
    K: int = param(4, "alphabet size (symbols per urn)", ge=2)
    alpha: float = param(1.0, "Dirichlet concentration of the task prior", gt=0)
    seq_len: int = param(12, "context length T", gt=1)
    n_layer: int = param(1, "transformer blocks", gt=0)
    n_head: int = param(2, "attention heads", gt=0)
    n_embd: int = param(32, "embedding width; divisible by n_head", gt=0)
    eval_every: int = param(25, "steps between evaluation snapshots", gt=0)
    n_eval: int = param(64, "held-out contexts per snapshot", gt=0)

    # the laptop preset's training settings are this config's defaults
    steps: int = TrainConfig.redefault("steps", 500)
    batch_size: int = TrainConfig.redefault("batch_size", 32)
    lr: float = TrainConfig.redefault("lr", 0.001)
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 20)
    min_lr_ratio: float = TrainConfig.redefault("min_lr_ratio", 1.0)
    weight_decay: float = TrainConfig.redefault("weight_decay", 0.0)
    log_every: int = TrainConfig.redefault("log_every", 50)
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict] = {
        # wider model, longer contexts, more snapshots (not yet timed on a GPU)
        "gpu": {"device": "cuda", "dtype": "bfloat16", "steps": 20000, "batch_size": 128,
                "K": 8, "seq_len": 32, "n_layer": 4, "n_head": 4, "n_embd": 128,
                "warmup_steps": 200, "eval_every": 250, "n_eval": 512, "log_every": 100,
                "ckpt_dir": "checkpoints/icl", "ckpt_every": 2000, "progress": True},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)

    def model_config(self) -> GPTConfig:
        return GPTConfig(vocab_size=self.K, block_size=self.seq_len, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd)


@dataclass
class ICLRun:
    """One training run: snapshots of the network next to the two Bayesian predictors."""

    cfg: ICLConfig
    tasks: torch.Tensor  # (D, K) the training urns
    steps: list[int]  # snapshot steps
    probs: torch.Tensor  # (S, n_eval, T, K) network predictions at each snapshot
    M: torch.Tensor  # (n_eval, T, K) memorizing predictor on the eval contexts
    G: torch.Tensor  # (n_eval, T, K) generalizing predictor on the eval contexts
    theta_true: torch.Tensor  # (n_eval, K) urn that generated each eval context
    d_M: np.ndarray  # (S,) mean KL(M || net)
    d_G: np.ndarray  # (S,) mean KL(G || net)
    history: History = field(repr=False, default_factory=History)

    @property
    def closer_to_M(self) -> np.ndarray:
        """(S,) True where the network is closer (in KL) to M than to G."""
        return self.d_M < self.d_G

    @property
    def d_MG(self) -> float:
        """d(M, G) = mean KL(M || G) on the eval contexts (eq. ``icl-distance``): the yardstick.

        A network whose ``d_M`` and ``d_G`` are both about this large is near neither predictor.
        """
        return float(kl(self.M, self.G).mean())

    @property
    def relative_distance(self) -> np.ndarray:
        """(S,) r = (d_G - d_M) / (d_G + d_M) in [-1, 1]: -1 is G, +1 is M."""
        return (self.d_G - self.d_M) / (self.d_G + self.d_M)


class Snapshots:
    """The network's predictions taken along training (the loop's evaluation hook).

    Checkpointed with the model (``train(..., extra=...)``), so a resumed run continues
    the same trajectory of snapshots.
    """

    def __init__(self, model: GPT, x_eval: torch.Tensor):
        self.model, self.x_eval = model, x_eval
        self.steps, self.probs = [], []  # probs: one (n, T, K) per snapshot

    def __call__(self, step: int) -> None:
        self.steps.append(step)
        self.probs.append(predict(self.model, self.x_eval).float())  # the net after `step` updates

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "probs": list(self.probs)}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.probs = list(state["steps"]), list(state["probs"])


@torch.no_grad()
def predict(model: GPT, x: torch.Tensor) -> torch.Tensor:
    """Next-symbol distributions after each prefix: (n, T) -> (n, T, K), float64."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, _ = model(x.to(device))  # (n, T, K)
    model.train(was_training)
    return torch.softmax(logits.float(), -1).double().cpu()


def train_icl(cfg: ICLConfig) -> ICLRun:
    """Train on the D-urn mixture; return the snapshots (eq. ``icl-distance``)."""
    tasks = sample_tasks(cfg.D, cfg.K, cfg.alpha, seed=cfg.seed)  # (D, K)
    eval_gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    x_eval, task_eval = sample_sequences(tasks, cfg.n_eval, cfg.seq_len, eval_gen)  # (n, T)
    M = memorizing_predictor(x_eval, tasks)  # (n, T, K)
    G = generalizing_predictor(x_eval, cfg.K, cfg.alpha)  # (n, T, K)

    torch.manual_seed(cfg.seed)
    model = GPT(cfg.model_config())
    snaps = Snapshots(model, x_eval)

    def get_batch(gen):
        x, _ = sample_sequences(tasks, cfg.batch_size, cfg.seq_len + 1, gen)  # (B, T+1)
        return x[:, :-1], x[:, 1:]  # inputs and next-symbol targets, each (B, T)

    def loss_fn(model, batch):
        x, y = batch
        device = next(model.parameters()).device
        logits, _ = model(x.to(device))  # (B, T, K)
        loss = F.cross_entropy(logits.reshape(-1, cfg.K).float(), y.to(device).reshape(-1))
        return loss, {}

    history = train(model, cfg, get_batch, loss_fn, desc=f"ICL D={cfg.D}", extra=snaps,
                    evaluate=snaps, eval_every=cfg.eval_every)
    steps = snaps.steps
    probs = torch.stack(snaps.probs)  # (S, n, T, K)
    d_M = np.array([float(kl(M, p.double()).mean()) for p in probs])
    d_G = np.array([float(kl(G, p.double()).mean()) for p in probs])
    return ICLRun(cfg, tasks, steps, probs, M, G, tasks[task_eval], d_M, d_G, history)


def run_grid(Ds, seeds, **overrides) -> dict[tuple[int, int], ICLRun]:
    """One :func:`train_icl` run per (D, seed), all with the same ``laptop`` overrides."""
    Ds, seeds = list(Ds), list(seeds)
    if not Ds or not seeds:
        raise ValueError("run_grid needs at least one D and one seed")
    return {(D, s): train_icl(ICLConfig.from_preset("laptop", **{**overrides, "D": D, "seed": s}))
            for D in Ds for s in seeds}


def main(argv: list[str] | None = None) -> None:
    """``python -m minimal.icl_training --preset laptop --set D=8``."""
    cfg = ICLConfig.cli(argv)
    run = train_icl(cfg)
    print(f"D={cfg.D}: final loss {run.history.last('loss'):.3f}")
    for s, dm, dg in zip(run.steps, run.d_M, run.d_G):
        print(f"step {s:6d}  KL(M||net) {dm:.4f}  KL(G||net) {dg:.4f}  "
              f"closer to {'M' if dm < dg else 'G'}")


if __name__ == "__main__":
    run_cli(main)
