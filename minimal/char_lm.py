"""Train the tiny GPT (:mod:`minimal.core.gpt`) as a character-level language model.

The shipped toy corpus, the shared loop (:func:`minimal.core.train.train`) and the
next-token loss (eq. ``next-token-loss``): the smallest complete use of the model, and
the check that it learns (``python -m minimal.char_lm --preset laptop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from minimal import asset_path
from minimal.core.config import ConfigError, RunError, TrainConfig, param, run_cli
from minimal.core.gpt import GPT, CharTokenizer, GPTConfig, check_heads_divide_width
from minimal.core.seeding import seed_everything
from minimal.core.train import History, resolve_device, train


@dataclass
class CharLMConfig(TrainConfig):
    """Train the tiny GPT as a character-level language model on a text file.

    ``laptop``: 0.35M parameters, 1000 steps, about 40 s on 2 CPU cores,
    validation loss about 0.20 nats/char.  ``gpu``: ~10M parameters, bf16,
    5000 steps with checkpoints (see benchmarks/).

    ``gpu`` preset: for the tiny GPT at ~10M parameters on 256-character contexts.  What it
    delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric reached)
    is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
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
    history: History
    val_loss: float


def train_char_lm(cfg: CharLMConfig) -> CharLMResult:
    """Train the tiny GPT on ``cfg.corpus`` with the shared loop; report validation loss."""

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
