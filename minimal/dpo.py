"""DPO and IPO on the tiny GPT, in the synthetic setting of :mod:`minimal.reward_model`.

Chapter "Inverse RL for alignment", section "Reward model and DPO on a tiny
GPT".  The policy pi_theta starts as a copy of pi_ref (a tiny GPT) and is
trained on the same Bradley-Terry-labelled pairs as the reward model, with

* DPO (eq. ``dpo-loss``): -log sigma(beta h), or
* IPO (eq. ``ipo-loss``): (h - 1/(2 tau))^2,

where h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l) is computed from
sequence log-probabilities (:func:`sequence_logprob`; the per-token terms come
from :meth:`minimal.gpt.GPT.token_logprobs`).  The result is scored by the gold
reward of fresh samples and by a Monte Carlo estimate of KL(pi_theta || pi_ref).
``python -m minimal.dpo --preset laptop``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from minimal.config import TrainConfig, param, run_cli
from minimal.gpt import GPT, check_heads_divide_width
from minimal.preference_bandit import dpo_loss, ipo_loss
from minimal.reward_model import (PROMPT_ID, gold_reward, make_preference_data, make_reference,
                                  sample_responses, with_prompt)
from minimal.train import resolve_device, train


def response_token_logprobs(model: GPT, responses: torch.Tensor) -> torch.Tensor:
    """log pi(y_t | prompt, y_<t) for every response token, shape (B, L).

    The prompt token is excluded from the response alphabet when sampling, so
    the per-token distribution is renormalised over letters here too.
    """
    tokens = with_prompt(responses)  # (B, L+1)
    logits, _ = model(tokens[:, :-1])  # (B, L, V)
    logits = logits.float()
    logits[..., PROMPT_ID] = float("-inf")
    logp = F.log_softmax(logits, dim=-1)  # (B, L, V)
    return logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, L)


def sequence_logprob(model: GPT, responses: torch.Tensor) -> torch.Tensor:
    """log pi(y | prompt) = sum_t log pi(y_t | prompt, y_<t), shape (B,)."""
    return response_token_logprobs(model, responses).sum(-1)  # (B,)


@dataclass
class DPOConfig(TrainConfig):
    """Direct preference optimization (or IPO) of the tiny GPT."""

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
    batch_size: int = param(64, "pairs per step", gt=0)
    lr: float = param(3e-3, "peak AdamW learning rate (1e-4 to 1e-2)", gt=0, le=1)
    weight_decay: float = param(0.0, "AdamW weight decay (0 keeps pi_theta = pi_ref at step 0)",
                                ge=0, lt=1)
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "laptop": {},
        "gpu": {"device": "cuda", "dtype": "bfloat16", "response_len": 32, "n_pairs": 100_000,
                "n_layer": 4, "n_head": 4, "n_embd": 128, "steps": 3000, "batch_size": 256,
                "n_eval": 4096, "ckpt_dir": "checkpoints/dpo"},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)


@torch.no_grad()
def score_policy(policy: GPT, reference: GPT, n: int, response_len: int, seed: int) -> dict[str, float]:
    """Mean gold reward of n samples, and KL(pi || pi_ref) ~ mean of log pi - log pi_ref on them."""
    gen = torch.Generator().manual_seed(seed)
    y = sample_responses(policy, n, response_len, gen)  # (n, L)
    kl = (sequence_logprob(policy, y) - sequence_logprob(reference, y)).mean()
    return {"gold_reward": float(gold_reward(y.cpu()).mean()), "kl": float(kl)}


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
        if cfg.loss == "dpo":
            loss = dpo_loss(logp_w, logp_l, ref_w, ref_l, cfg.beta)
        else:
            loss = ipo_loss(logp_w, logp_l, ref_w, ref_l, cfg.tau)
        # h = difference of the log-ratios; DPO's implicit reward margin is beta * h, IPO
        # pulls h towards 1 / (2 tau), so h itself is the number both losses share
        margin = ((logp_w - ref_w) - (logp_l - ref_l)).detach()  # (B,) h
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
