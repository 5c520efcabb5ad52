"""A tiny decoder-only transformer: the one language model every LLM chapter uses.

Reading order: :class:`CharTokenizer`, :class:`GPTConfig`,
:class:`CausalSelfAttention`, :class:`MLP`, :class:`Block`, :class:`GPT`, then
the character-level trainer on the shipped toy corpus
(``python -m minimal.gpt --preset laptop``).  The equations, named as in the
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

The layout follows the usual GPT-2 design (pre-norm blocks, learned position
embeddings, tied input and output embeddings) at a few hundred thousand
parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from minimal import asset_path
from minimal.config import ConfigError, RunError, TrainConfig, param, run_cli


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

    def token_logprobs(self, tokens: torch.Tensor) -> torch.Tensor:
        """log pi(tokens[:, t] | tokens[:, :t]) for t >= 1, shape (B, T-1).

        Sum the entries that belong to a continuation to get its sequence
        log-probability; mask out the prompt and padding.
        """
        logits, _ = self(tokens[:, :-1])  # (B, T-1, V): predictions for positions 1..T-1
        logp = F.log_softmax(logits.float(), dim=-1)
        return logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T); returns (B, T + new).

        ``temperature`` scales the logits before sampling (0 means greedy);
        ``top_k`` keeps only the k most likely tokens.  Pass a seeded CPU
        ``generator`` for repeatable samples.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.cfg.vocab_size:
            raise ValueError(f"top_k must be in [1, {self.cfg.vocab_size}], got {top_k}")
        for _ in range(max_new_tokens):
            context = idx[:, -self.cfg.block_size:]  # crop to the position table
            logits, _ = self(context)
            logits = logits[:, -1, :].float()  # (B, V) at the last position
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


# ------------------------------------------------------------ char-LM trainer
@dataclass
class CharLMConfig(TrainConfig):
    """Train the tiny GPT as a character-level language model on a text file.

    ``laptop``: 0.35M parameters, 1000 steps, about 40 s on 2 CPU cores,
    validation loss about 0.20 nats/char.  ``gpu``: ~10M parameters, bf16,
    5000 steps with checkpoints (see benchmarks/).
    """

    steps: int = TrainConfig.redefault("steps", 1000)
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 50)
    corpus: str = param(str(asset_path("tiny_corpus.txt")), "path to a UTF-8 text file")
    block_size: int = param(64, "context length in characters", gt=1)
    n_layer: int = param(3, "transformer blocks", gt=0)
    n_head: int = param(4, "attention heads per block", gt=0)
    n_embd: int = param(96, "embedding width; divisible by n_head", gt=0)
    dropout: float = param(0.0, "dropout probability", ge=0, lt=1)
    val_fraction: float = param(0.1, "tail of the corpus held out for validation", gt=0, lt=1)
    eval_batches: int = param(8, "batches averaged for the validation loss", gt=0)

    presets: ClassVar = {
        "laptop": {},  # the field defaults
        "gpu": {"device": "cuda", "dtype": "bfloat16", "steps": 5000, "batch_size": 64,
                "block_size": 256, "n_layer": 6, "n_head": 6, "n_embd": 384, "dropout": 0.1,
                "lr": 1e-3, "warmup_steps": 200, "ckpt_dir": "checkpoints/gpt",
                "ckpt_every": 500, "log_every": 50},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)

    def preflight(self, overwrite: bool = False) -> None:
        """Also the corpus: a UTF-8 file that exists and is long enough for block_size."""
        try:
            text = load_corpus(self.corpus)
        except (OSError, ValueError) as exc:  # missing, unreadable, empty or not UTF-8
            raise RunError(f"{exc}; pass a UTF-8 text file with --set corpus=PATH") from None
        check_block_size(len(text), self)
        super().preflight(overwrite)

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout)


def load_corpus(path: str) -> str:
    """Read the training text; a missing or empty file is an error that names the path."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"corpus file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"corpus file is not UTF-8 text: {p} ({exc.reason} at byte "
                         f"{exc.start})") from None
    if not text:
        raise ValueError(f"corpus file is empty: {p}")
    return text


def validation_size(n_chars: int, cfg: CharLMConfig) -> int:
    """Characters held out at the corpus's end: a ``val_fraction`` share, and at least one
    window of ``block_size`` plus its next-character target."""
    return max(cfg.block_size + 1, int(n_chars * cfg.val_fraction))


def largest_block_size(n_chars: int, val_fraction: float) -> int:
    """The largest block_size for which both splits of ``n_chars`` hold a window and its target.

    Validation takes ``v = int(n_chars * val_fraction)`` characters while ``block_size < v``
    (training then needs ``block_size < n_chars - v``) and ``block_size + 1`` beyond that
    (training then keeps ``n_chars - block_size - 1 > block_size``).
    """
    v = int(n_chars * val_fraction)
    best = min(v - 1, n_chars - v - 1)
    if (n_chars - 2) // 2 >= v:
        best = max(best, (n_chars - 2) // 2)
    return best


def check_block_size(n_chars: int, cfg: CharLMConfig) -> None:
    """Refuse a block_size that leaves training less than one window and its target."""
    n_val = validation_size(n_chars, cfg)
    if n_chars - n_val > cfg.block_size:
        return
    largest = largest_block_size(n_chars, cfg.val_fraction)
    fits = (f"the largest block_size that fits is {largest}" if largest > 1
            else "no block_size fits: use a longer corpus")
    raise ConfigError(f"CharLMConfig.block_size = {cfg.block_size} is too long for the corpus "
                      f"{cfg.corpus} ({n_chars:,} characters): the validation split takes the "
                      f"last {n_val:,} (val_fraction = {cfg.val_fraction}, at least "
                      f"block_size + 1) and leaves {max(0, n_chars - n_val):,} for training, "
                      f"which needs more than block_size; {fits}")


def random_windows(data: torch.Tensor, block_size: int, batch_size: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``data``: inputs x and next-token targets y, (B, T)."""
    if len(data) <= block_size:
        raise ValueError(f"text of {len(data)} tokens is too short for block_size {block_size}")
    start = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size)  # (T,)
    x = data[start[:, None] + offsets]  # (B, T)
    y = data[start[:, None] + offsets + 1]  # (B, T), x shifted by one
    return x, y


@torch.no_grad()
def evaluate(model: GPT, data: torch.Tensor, cfg: CharLMConfig, seed: int = 1234) -> float:
    """Mean next-token loss over ``cfg.eval_batches`` fixed random windows of ``data``."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(cfg.eval_batches):
        x, y = random_windows(data, cfg.block_size, cfg.batch_size, gen)
        losses.append(model(x.to(device), y.to(device))[1].item())
    return sum(losses) / len(losses)


@dataclass
class CharLMResult:
    model: GPT
    tokenizer: CharTokenizer
    history: "object"
    val_loss: float


def train_char_lm(cfg: CharLMConfig) -> CharLMResult:
    """Train the tiny GPT on ``cfg.corpus`` with the shared loop; report validation loss."""
    from minimal.seeding import seed_everything
    from minimal.train import resolve_device, train

    text = load_corpus(cfg.corpus)
    check_block_size(len(text), cfg)
    tok = CharTokenizer(text)
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    n_val = validation_size(len(data), cfg)
    train_data, val_data = data[:-n_val], data[-n_val:]
    seed_everything(cfg.seed)
    model = GPT(cfg.model_config(tok.vocab_size))
    device = resolve_device(cfg.device)

    def get_batch(gen):
        x, y = random_windows(train_data, cfg.block_size, cfg.batch_size, gen)
        return x.to(device), y.to(device)

    def loss_fn(model, batch):
        x, y = batch
        return model(x, y)[1], {}

    history = train(model, cfg, get_batch, loss_fn, desc="char-LM")
    return CharLMResult(model, tok, history, evaluate(model, val_data, cfg))


def main(argv: list[str] | None = None) -> None:
    cfg = CharLMConfig.cli(argv)
    result = train_char_lm(cfg)
    print(f"parameters: {result.model.num_params():,}")
    print(f"final train loss: {result.history.last('loss'):.3f}  val loss: {result.val_loss:.3f}")
    device = next(result.model.parameters()).device
    prompt = torch.tensor([result.tokenizer.encode("the ")], device=device)
    sample = result.model.generate(prompt, 120, temperature=0.8,
                                   generator=torch.Generator().manual_seed(cfg.seed))
    print("sample:", result.tokenizer.decode(sample[0].tolist()))


if __name__ == "__main__":
    run_cli(main)
