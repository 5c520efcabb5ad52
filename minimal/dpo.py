"""DPO and IPO on the tiny GPT, in the letters task of :mod:`minimal.worlds.letters`.

Chapter "Inverse RL for alignment", section "Reward model and DPO on a tiny
GPT".  The policy pi_theta starts as a copy of pi_ref (a tiny GPT) and is
trained on the same Bradley-Terry-labelled pairs as the reward model, with

* DPO (eq. ``dpo-loss``): -log sigma(beta h), whose gradient (eq. ``dpo-gradient``) weights
  each pair by beta sigma(-beta h) and fixes only the difference of the chosen and rejected
  log-probabilities (so both can fall: likelihood displacement), or
* IPO (eq. ``ipo-loss``): (h - 1/(2 tau))^2, Psi-preference optimisation (eq. ``psi-po``) with
  the identity Psi, whose target margin is finite (eq. ``ipo-population-margin``),

where h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l)
(:func:`minimal.core.preference_losses.log_ratio_margin`, like both losses) is computed
from sequence log-probabilities (:func:`minimal.worlds.letters.sequence_logprob`, the sum
of :meth:`minimal.core.gpt.GPT.token_logprobs` over a response with the prompt token
banned).  The result is scored by the gold reward of fresh samples and by a Monte Carlo
estimate of KL(pi_theta || pi_ref) (:func:`minimal.worlds.letters.score_policy`).
``python -m minimal.dpo --preset laptop``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT, check_heads_divide_width
from minimal.core.preference_losses import dpo_loss, ipo_loss, log_ratio_margin
from minimal.core.train import resolve_device, train
from minimal.worlds.letters import (
    make_preference_data,
    make_reference,
    score_policy,
    sequence_logprob,
)


@dataclass
class DPOConfig(TrainConfig):
    """Direct preference optimization (or IPO) of the tiny GPT.

    ``gpu`` preset: for DPO/IPO on a 4-layer GPT with 100k pairs of 32-letter responses.
    What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric
    reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    loss: str = param("dpo", "'dpo' (eq. dpo-loss) or 'ipo' (eq. ipo-loss)", choices=("dpo", "ipo"))
    beta: float = param(0.1, "DPO temperature beta (typical 0.01 to 0.5)", gt=0)
    tau: float = param(0.1, "IPO regularisation tau; the margin target is 1/(2 tau)", gt=0)
    response_len: int = param(8, "letters per response", ge=3)
    n_pairs: int = param(2000, "training pairs", gt=0)
    n_eval: int = param(512, "samples used to score the policy", gt=0)
    n_layer: int = param(1, "transformer blocks", gt=0)
    n_head: int = param(2, "attention heads", gt=0)
    n_embd: int = param(32, "embedding width (a multiple of n_head)", gt=0)
    steps: int = TrainConfig.redefault("steps", 150)
    batch_size: int = TrainConfig.redefault("batch_size", 64, doc="pairs per step")
    lr: float = TrainConfig.redefault("lr", 3e-3, doc="peak AdamW learning rate (1e-4 to 1e-2)")
    weight_decay: float = TrainConfig.redefault(
        "weight_decay", 0.0, doc="AdamW weight decay (0 keeps pi_theta = pi_ref at step 0)")
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "response_len": 32, "n_pairs": 100_000,
                "n_layer": 4, "n_head": 4, "n_embd": 128, "steps": 3000, "batch_size": 256,
                "n_eval": 4096, "ckpt_dir": "checkpoints/dpo"},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)


def train_dpo(cfg: DPOConfig) -> dict[str, Any]:
    """Train pi_theta from pi_ref on Bradley-Terry pairs; return before/after scores."""
    reference = make_reference(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.response_len, seed=0)
    data = make_preference_data(reference, cfg.n_pairs, cfg.response_len, seed=cfg.seed)
    policy = copy.deepcopy(reference)
    device = resolve_device(cfg.device)
    reference.to(device).eval()
    with torch.no_grad():  # log pi_ref of every pair, computed once
        logp_ref_w = sequence_logprob(reference, data["chosen"].to(device)).cpu()  # (n,)
        logp_ref_l = sequence_logprob(reference, data["rejected"].to(device)).cpu()

    def get_batch(gen: torch.Generator):
        return torch.randint(cfg.n_pairs, (cfg.batch_size,), generator=gen)

    def loss_fn(model: GPT, idx: torch.Tensor):
        dev = next(model.parameters()).device
        logp_w = sequence_logprob(model, data["chosen"][idx].to(dev))  # (B,)
        logp_l = sequence_logprob(model, data["rejected"][idx].to(dev))  # (B,)
        ref_w, ref_l = logp_ref_w[idx].to(dev), logp_ref_l[idx].to(dev)
        # h = difference of the log-ratios; DPO's implicit reward margin is beta * h, IPO
        # pulls h towards 1 / (2 tau), so h itself is the number both losses share
        h = log_ratio_margin(logp_w, logp_l, ref_w, ref_l)  # (B,)
        loss = (dpo_loss(h, cfg.beta) if cfg.loss == "dpo" else ipo_loss(h, cfg.tau)).mean()
        margin = h.detach()  # (B,)
        return loss, {"logratio_margin": float(margin.mean()),
                      "reward_accuracy": float((margin > 0).float().mean())}

    before = score_policy(reference, reference, cfg.n_eval, cfg.response_len, seed=99)
    history = train(policy, cfg, get_batch, loss_fn, desc=cfg.loss)
    policy.eval()
    after = score_policy(policy, reference, cfg.n_eval, cfg.response_len, seed=99)
    return {"policy": policy, "history": history, "before": before, "after": after}


def main(argv: list[str] | None = None) -> None:
    cfg = DPOConfig.cli(argv, description="DPO / IPO on the tiny GPT")
    res = train_dpo(cfg)
    print(f"{cfg.loss}: gold reward {res['before']['gold_reward']:.2f} -> "
          f"{res['after']['gold_reward']:.2f}, KL to reference {res['after']['kl']:.2f} nats")


if __name__ == "__main__":
    run_cli(main)
