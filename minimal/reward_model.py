"""A Bradley-Terry reward model on the tiny GPT, in the letters task.

Chapter "Inverse RL for alignment", section "Reward model and DPO on a tiny
GPT".  The synthetic alignment setting is :mod:`minimal.worlds.letters`:

a one-token prompt, responses of letters, a gold reward r* in code, and
Bradley-Terry pairs sampled from pi_ref, optionally with biased raters.

The reward model r_phi is the GPT's final-layer feature at the last token
followed by a linear head, trained with the Bradley-Terry loss (eq.
``bt-loss``) on the shared loop.  ``python -m minimal.reward_model --preset laptop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT, GPTConfig, check_heads_divide_width
from minimal.core.preference_losses import bt_loss
from minimal.core.train import resolve_device, train
from minimal.worlds.letters import (
    ALPHABET,
    gold_reward,
    make_preference_data,
    make_reference,
    with_prompt,
)


class RewardModel(nn.Module):
    """r_phi(y) = w . h_L(y) + b, with h_L the GPT's last-position feature."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.body = GPT(cfg)
        self.head = nn.Linear(cfg.n_embd, 1)

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        h = self.body.hidden(with_prompt(responses))  # (B, L+1, C)
        return self.head(h[:, -1]).squeeze(-1).float()  # (B,)


def pair_accuracy(chosen_score: torch.Tensor, rejected_score: torch.Tensor) -> float:
    """Fraction of pairs scored in the labelled order (ties count half)."""
    d = chosen_score - rejected_score
    return float(((d > 0).float() + 0.5 * (d == 0).float()).mean())


@dataclass
class RewardModelConfig(TrainConfig):
    """Train a Bradley-Terry reward model on synthetic preference pairs.

    ``gpu`` preset: for a 4-layer reward model on 100k pairs of 32-letter responses.  What
    it delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric
    reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    response_len: int = param(8, "letters per response (typical 6 to 32)", ge=3)
    n_pairs: int = param(2000, "training pairs", gt=0)
    n_test: int = param(2000, "held-out pairs", gt=0)
    n_layer: int = param(1, "transformer blocks", gt=0)
    n_head: int = param(2, "attention heads", gt=0)
    n_embd: int = param(32, "embedding width (a multiple of n_head)", gt=0)
    steps: int = TrainConfig.redefault("steps", 200)
    batch_size: int = TrainConfig.redefault("batch_size", 64, doc="pairs per step")
    lr: float = TrainConfig.redefault("lr", 3e-3, doc="peak AdamW learning rate (1e-4 to 1e-2)")
    rater_bias: float = param(0.0, "raters' extra utility per letter 'e' (0: labels follow r*)")
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "response_len": 32, "n_pairs": 100_000,
                "n_layer": 4, "n_head": 4, "n_embd": 128, "steps": 3000, "batch_size": 256,
                "ckpt_dir": "checkpoints/reward_model"},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)


def train_reward_model(cfg: RewardModelConfig) -> dict[str, Any]:
    """Fit r_phi by eq. ``bt-loss``; report held-out accuracy against the labels and the gold reward's own."""
    reference = make_reference(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.response_len, seed=0)
    data = make_preference_data(reference, cfg.n_pairs, cfg.response_len, seed=cfg.seed,
                                rater_bias=cfg.rater_bias)
    test = make_preference_data(reference, cfg.n_test, cfg.response_len, seed=10_000 + cfg.seed,
                                rater_bias=cfg.rater_bias)
    torch.manual_seed(cfg.seed)
    model = RewardModel(GPTConfig(vocab_size=len(ALPHABET), block_size=cfg.response_len + 1,
                                  n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd))

    def get_batch(gen: torch.Generator):
        idx = torch.randint(cfg.n_pairs, (cfg.batch_size,), generator=gen)
        return data["chosen"][idx], data["rejected"][idx]

    def loss_fn(m: RewardModel, batch):
        dev = next(m.parameters()).device
        r_w, r_l = m(batch[0].to(dev)), m(batch[1].to(dev))  # (B,), (B,)
        loss = bt_loss(r_w, r_l).mean()
        return loss, {"train_accuracy": pair_accuracy(r_w.detach(), r_l.detach())}

    history = train(model, cfg, get_batch, loss_fn, desc="reward model")
    dev = resolve_device(cfg.device)
    with torch.no_grad():
        s_w, s_l = model(test["chosen"].to(dev)).cpu(), model(test["rejected"].to(dev)).cpu()
    g_w, g_l = gold_reward(test["chosen"]), gold_reward(test["rejected"])
    return {"model": model, "history": history,
            "test_accuracy": pair_accuracy(s_w, s_l),
            "gold_accuracy": pair_accuracy(g_w, g_l),  # the ceiling set by label noise
            "correlation": float(torch.corrcoef(torch.stack([torch.cat([s_w, s_l]),
                                                             torch.cat([g_w, g_l])]))[0, 1])}


def main(argv: list[str] | None = None) -> None:
    cfg = RewardModelConfig.cli(argv, description="Bradley-Terry reward model on the tiny GPT")
    res = train_reward_model(cfg)
    print(f"held-out accuracy {res['test_accuracy']:.3f} (gold reward on the same labels "
          f"{res['gold_accuracy']:.3f}); correlation with the gold reward {res['correlation']:.3f}")


if __name__ == "__main__":
    run_cli(main)
