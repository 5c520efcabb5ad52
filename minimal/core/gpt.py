"""A tiny decoder-only transformer: the one language model every LLM chapter uses.

Reading order: :class:`CharTokenizer`, :class:`GPTConfig`,
:class:`CausalSelfAttention`, :class:`MLP`, :class:`Block`, :class:`GPT`.  The
character-level trainer on the shipped toy corpus is :mod:`minimal.char_lm`
(``python -m minimal.char_lm --preset laptop``).  The equations, named as in the
front-matter page "How to run the code":

* attention (eq. ``attention``):
  :math:`\\mathrm{Attn}(Q,K,V) = \\mathrm{softmax}(QK^\\top/\\sqrt{d_h} + M)V`,
  with the causal mask :math:`M_{ij} = -\\infty` for :math:`j > i`, so
  position :math:`i` sees only tokens :math:`\\le i`;
* next-token loss (eq. ``next-token-loss``):
  :math:`\\mathcal{L}(\\theta) = -\\frac1T\\sum_t \\log \\pi_\\theta(x_{t+1}\\mid x_{\\le t})`;
* the same :math:`\\log \\pi_\\theta(y_t \\mid x, y_{<t})`, summed over a
  continuation :math:`y`, is the sequence log-probability that the RL and
  preference chapters use (:meth:`GPT.token_logprobs`).

The model owns the two primitives every trainer needs: :meth:`GPT.token_logprobs`
(optionally renormalised over the tokens a task allows) and :meth:`GPT.generate`
(optionally never emitting some tokens).

The layout follows the usual GPT-2 design (pre-norm blocks, learned position
embeddings, tied input and output embeddings) at a few hundred thousand
parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from minimal.core.config import ConfigError


# ------------------------------------------------------------------ tokenizer
class CharTokenizer:
    """Maps each character of a fixed alphabet to an integer id and back."""

    def __init__(self, alphabet: str):
        chars = sorted(set(alphabet))
        if not chars:
            raise ValueError("CharTokenizer needs a non-empty alphabet")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters {unknown!r} are not in the tokenizer's alphabet")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


# ---------------------------------------------------------------------- model
@dataclass
class GPTConfig:
    """Shape of the network."""

    vocab_size: int
    block_size: int = 64  # longest context the position table covers
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"GPTConfig.{name} = {value!r}: must be a positive int")
        if self.n_embd % self.n_head:
            raise ConfigError(f"GPTConfig: n_embd = {self.n_embd} is not divisible by "
                              f"n_head = {self.n_head}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"GPTConfig.dropout = {self.dropout!r}: must be in [0, 1)")


def check_heads_divide_width(cfg) -> None:
    """Config rule of every trainer that builds a GPT: the heads split the width evenly.

    Call it from a config's ``check``; it fails through ``cfg.fail``, which names the config.
    """
    if cfg.n_embd % cfg.n_head:
        cfg.fail(f"n_embd = {cfg.n_embd} is not divisible by n_head = {cfg.n_head}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask (eq. ``attention``)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # queries, keys, values in one matmul
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        # split channels into heads: (B, nh, T, hs)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(  # softmax(q k^T / sqrt(hs) + M) v, M causal
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads back side by side
        return self.proj(y)


class MLP(nn.Module):
    """Position-wise feed-forward network, 4x wide with GELU."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token and position embeddings, ``n_layer`` blocks, a final norm, tied output head."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying, as in GPT-2
        self.apply(self._init)
        for name, p in self.named_parameters():  # scale residual projections by depth (GPT-2)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-layer features after the last norm, (B, T, n_embd).  Reward models read these."""
        if idx.dim() != 2:
            raise ValueError(f"GPT expects token ids of shape (B, T), got {tuple(idx.shape)}")
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.cfg.block_size}")
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)  # (B, T, C)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (B, T, V); with ``targets`` also the next-token loss (eq. ``next-token-loss``)."""
        logits = self.head(self.hidden(idx))  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss

    def token_logprobs(self, tokens: torch.Tensor, banned_ids=()) -> torch.Tensor:
        """log pi(tokens[:, t] | tokens[:, :t]) for t >= 1, shape (B, T-1).

        Sum the entries that belong to a continuation to get its sequence
        log-probability; mask out the prompt and padding.  ``banned_ids`` are
        tokens the task never emits (the letters task's prompt token): their
        logits are set to -inf, so each distribution is renormalised over the
        others, exactly as :meth:`generate` samples with the same ``banned_ids``.
        """
        logits, _ = self(tokens[:, :-1])  # (B, T-1, V): predictions for positions 1..T-1
        logits = logits.float()
        if banned_ids:
            logits[..., list(banned_ids)] = float("-inf")
        logp = F.log_softmax(logits, dim=-1)
        return logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 banned_ids=()) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T); returns (B, T + new).

        ``temperature`` scales the logits before sampling (0 means greedy);
        ``top_k`` keeps only the k most likely tokens; ``banned_ids`` are never
        sampled (their logits are -inf).  Pass a seeded CPU ``generator`` for
        repeatable samples.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.cfg.vocab_size:
            raise ValueError(f"top_k must be in [1, {self.cfg.vocab_size}], got {top_k}")
        for _ in range(max_new_tokens):
            context = idx[:, -self.cfg.block_size:]  # crop to the position table
            logits, _ = self(context)
            logits = logits[:, -1, :].float()  # (B, V) at the last position
            if banned_ids:
                logits[:, list(banned_ids)] = float("-inf")
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, top_k).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=generator).to(idx.device)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    @torch.no_grad()
    def sample_responses(self, prompts: torch.Tensor, length: int, generator: torch.Generator,
                         temperature: float = 1.0) -> torch.Tensor:
        """``length`` tokens sampled after each prompt row, the model in eval mode meanwhile:
        (N, P) -> (N, length), on the CPU (the responses a verifier then scores)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = self.generate(prompts.to(device), length, temperature=temperature,
                            generator=generator)  # (N, P + length)
        self.train(was_training)
        return out[:, prompts.size(1):].cpu()


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
