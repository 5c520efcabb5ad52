"""A Bradley-Terry reward model on the tiny GPT, with a gold reward defined in code.

Chapter "Inverse RL for alignment", section "Reward model and DPO on a tiny
GPT".  The synthetic alignment setting, shared with :mod:`minimal.dpo`:

* a **prompt** is the single token ``>``; a **response** y is ``response_len``
  letters from ``abcdefgh``;
* the **reference policy** pi_ref is a tiny GPT (:class:`minimal.gpt.GPT`)
  at its random initialisation, which is close to uniform over letters (a
  stand-in for a supervised model; nothing is downloaded);
* the **gold reward** r*(y) = #a(y) - #h(y) - 2 [y has three equal letters in
  a row] is a "sentiment count" with a constraint (:func:`gold_reward`);
* **preference pairs**: two responses sampled from pi_ref, the first wins
  with probability sigma(r*(y_1) - r*(y_2)) (eq. ``bt-preference``):
  :func:`make_preference_data`.  Optionally the raters carry a systematic bias
  the gold reward does not share (``rater_bias`` extra utility per letter
  ``e``, :func:`rater_utility`), the setting of the over-optimization curve in
  :mod:`minimal.rlhf_ppo`.

The reward model r_phi is the GPT's final-layer feature at the last token
followed by a linear head, trained with the Bradley-Terry loss (eq.
``bt-loss``) on the shared loop.  ``python -m minimal.reward_model --preset laptop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from minimal.config import TrainConfig, param, run_cli
from minimal.gpt import GPT, CharTokenizer, GPTConfig, check_heads_divide_width
from minimal.train import resolve_device, train

ALPHABET = ">abcdefgh"  # '>' is the prompt token
TOKENIZER = CharTokenizer(ALPHABET)
PROMPT_ID = TOKENIZER.stoi[">"]


def gold_reward(tokens: torch.Tensor) -> torch.Tensor:
    """r*(y) for token ids (B, L) of responses (no prompt): #a - #h - 2 [three equal in a row], (B,)."""
    if tokens.dim() != 2 or tokens.size(1) < 3:
        raise ValueError(f"responses must be (B, L) with L >= 3, got {tuple(tokens.shape)}")
    a, h = TOKENIZER.stoi["a"], TOKENIZER.stoi["h"]
    count = (tokens == a).sum(1).float() - (tokens == h).sum(1).float()  # (B,)
    triple = ((tokens[:, 2:] == tokens[:, 1:-1]) & (tokens[:, 1:-1] == tokens[:, :-2])).any(1)
    return count - 2.0 * triple.float()


BIAS_LETTER = "e"  # the letter biased raters like; the gold reward ignores it


def rater_utility(tokens: torch.Tensor, rater_bias: float = 0.0) -> torch.Tensor:
    """What the raters' comparisons follow: r*(y) + rater_bias * #e(y), shape (B,)."""
    bias = (tokens == TOKENIZER.stoi[BIAS_LETTER]).sum(1).float()  # (B,)
    return gold_reward(tokens) + rater_bias * bias


def make_reference(n_layer: int, n_head: int, n_embd: int, response_len: int,
                   seed: int) -> GPT:
    """pi_ref: a tiny GPT at its seeded random initialisation (close to uniform).

    The caller's global torch RNG is left as it was (``fork_rng``), so building
    pi_ref does not reseed whatever the caller draws next.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT(GPTConfig(vocab_size=len(ALPHABET), block_size=response_len + 1,
                             n_layer=n_layer, n_head=n_head, n_embd=n_embd))


@torch.no_grad()
def sample_responses(policy: GPT, n: int, response_len: int, gen: torch.Generator) -> torch.Tensor:
    """n responses from the policy, letters only, shape (n, L).

    The prompt token is never sampled: its logit is masked out.
    """
    device = next(policy.parameters()).device
    idx = torch.full((n, 1), PROMPT_ID, dtype=torch.long, device=device)
    for _ in range(response_len):
        logits = policy(idx)[0][:, -1, :].float()  # (n, V)
        logits[:, PROMPT_ID] = float("-inf")
        probs = F.softmax(logits, dim=-1).cpu()
        nxt = torch.multinomial(probs, 1, generator=gen).to(device)  # (n, 1)
        idx = torch.cat([idx, nxt], dim=1)
    return idx[:, 1:]


def with_prompt(responses: torch.Tensor) -> torch.Tensor:
    """Prepend the prompt token: (B, L) -> (B, L + 1)."""
    prompt = torch.full_like(responses[:, :1], PROMPT_ID)
    return torch.cat([prompt, responses], dim=1)


def make_preference_data(reference: GPT, n_pairs: int, response_len: int,
                         seed: int, rater_bias: float = 0.0) -> dict[str, torch.Tensor]:
    """Pairs from pi_ref labelled by Bradley-Terry sampling of the gold reward.

    With ``rater_bias`` the labels follow :func:`rater_utility` instead.
    Returns ``chosen`` and ``rejected`` responses, each (n_pairs, L).
    """
    gen = torch.Generator().manual_seed(seed)
    y1 = sample_responses(reference, n_pairs, response_len, gen).cpu()  # (n, L)
    y2 = sample_responses(reference, n_pairs, response_len, gen).cpu()
    p1 = torch.sigmoid(rater_utility(y1, rater_bias) - rater_utility(y2, rater_bias))  # (n,)
    first = (torch.rand(n_pairs, generator=gen) < p1)[:, None]
    return {"chosen": torch.where(first, y1, y2), "rejected": torch.where(first, y2, y1)}


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
    """Train a Bradley-Terry reward model on synthetic preference pairs."""

    response_len: int = param(8, "letters per response (typical 6 to 32)", ge=3)
    n_pairs: int = param(2000, "training pairs", gt=0)
    n_test: int = param(2000, "held-out pairs", gt=0)
    n_layer: int = param(1, "transformer blocks", gt=0)
    n_head: int = param(2, "attention heads", gt=0)
    n_embd: int = param(32, "embedding width (a multiple of n_head)", gt=0)
    steps: int = TrainConfig.redefault("steps", 200)
    batch_size: int = param(64, "pairs per step", gt=0)
    lr: float = param(3e-3, "peak AdamW learning rate (1e-4 to 1e-2)", gt=0, le=1)
    rater_bias: float = param(0.0, "raters' extra utility per letter 'e' (0: labels follow r*)")
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "laptop": {},
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
        loss = -F.logsigmoid(r_w - r_l).mean()
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
