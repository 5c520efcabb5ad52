"""The supervised warm-up (SFT) of chapter 2: the tiny GPT learns to add, a little.

Next-token loss on the response tokens of correct answers from the addition task
(:mod:`minimal.worlds.addition`), on the shared loop.  Deliberately short, so that
reinforcement learning starts from a policy that sometimes succeeds::

    python -m minimal.sft                  # SFT warm-up, ~5 s on a laptop
    python -m minimal.sft --preset gpu     # bigger model and data, bf16
    python -m minimal.sft --set task=scratchpad digits=3   # the written-scratchpad task

``task`` picks the world: ``addition`` (:mod:`minimal.worlds.addition`, the default) or
``scratchpad`` (:mod:`minimal.worlds.scratchpad`, same interface, tens of tokens per answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from minimal.core import distributed
from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT, GPTConfig, check_heads_divide_width
from minimal.core.train import History, one_thread, train
from minimal.worlds.addition import (
    TOKENIZER,
    Problems,
    accuracy,
    held_out,
    prompt_len,
    response_len,
    sample_problems,
)

#: the task a config names -> the module that implements it (same interface)
TASKS = ("addition", "scratchpad")


def world(task: str):
    """The task module of ``task``: :mod:`minimal.worlds.addition` or
    :mod:`minimal.worlds.scratchpad`."""
    if task == "scratchpad":
        from minimal.worlds import scratchpad
        return scratchpad
    if task != "addition":
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    from minimal.worlds import addition
    return addition


@dataclass
class SFTConfig(TrainConfig):
    """Supervised warm-up on correct answers: next-token loss on the response tokens only.

    Deliberately short: RL needs a policy that sometimes succeeds (reward
    signal) and often fails (room to improve).

    ``gpu`` preset: for the warm-up on 5-digit addition with a 4-layer GPT (the GRPO gpu
    start).  What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the
    metric reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    digits: int = param(2, "operand width d; levels 1..d are mixed (1 to 6)", ge=1, le=6)
    task: str = param("addition", "'addition' (answer only) or 'scratchpad' (written columns, "
                      "then the answer)", choices=TASKS)
    steps: int = TrainConfig.redefault(
        "steps", 450, doc="optimizer steps; few on purpose, for weak accuracy")
    batch_size: int = TrainConfig.redefault("batch_size", 64, doc="problems per step")
    lr: float = TrainConfig.redefault("lr", 3e-3, doc="peak AdamW learning rate (1e-4 to 1e-2)")
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 10, doc="linear warm-up steps")
    n_layer: int = param(2, "transformer blocks", gt=0)
    n_head: int = param(2, "attention heads", gt=0)
    n_embd: int = param(48, "embedding width; divisible by n_head", gt=0)
    eval_size: int = param(1000, "held-out problems for the accuracy report", gt=0)
    log_every: int = TrainConfig.redefault("log_every", 25)
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "digits": 5, "steps": 600,
                "batch_size": 512, "n_layer": 4, "n_head": 4, "n_embd": 128, "eval_size": 4000,
                "ckpt_dir": "checkpoints/arithmetic_sft", "progress": True},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)


def make_model(cfg: SFTConfig) -> GPT:
    """The shared tiny GPT, sized to hold a prompt and its longest response."""
    if cfg.task == "addition":
        block, vocab = prompt_len(cfg.digits) + response_len(cfg.digits), TOKENIZER.vocab_size
    else:
        w = world(cfg.task)
        block, vocab = w.prompt_len(cfg.digits) + w.response_len(cfg.digits), w.TOKENIZER.vocab_size
    torch.manual_seed(cfg.seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block,
                         n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd))


def sft_loss(model: GPT, problems: Problems) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token loss (eq. ``next-token-loss``) on the answer and its ``$``, not on the prompt."""
    device = next(model.parameters()).device
    tokens = torch.cat([problems.prompts, problems.targets], 1).to(device)  # (N, P + L)
    P = problems.prompts.size(1)
    logp = model.token_logprobs(tokens)[:, P - 1:]  # (N, L): log pi(y_t | x, y_<t)
    inside = (torch.arange(logp.size(1)).unsqueeze(0) < problems.target_len.unsqueeze(1))
    inside = inside.to(device)  # (N, L) answer tokens and the first "$"
    loss = -(logp * inside).sum() / distributed.mean_count(inside.sum())  # see its docstring
    return loss, {}


@dataclass
class SFTResult:
    model: GPT
    history: History
    accuracy: float  # pass@1 at temperature 1 on the held-out set
    greedy_accuracy: float
    config: SFTConfig


def train_sft(cfg: SFTConfig) -> SFTResult:
    """Train a fresh tiny GPT on correct answers; report held-out pass@1."""
    model = make_model(cfg)
    if cfg.task == "addition":
        draw, held, acc_of = sample_problems, held_out, accuracy
    else:
        w = world(cfg.task)
        draw, held, acc_of = w.sample_problems, w.held_out, w.accuracy
    with one_thread():
        history = train(model, cfg,
                        lambda gen: draw(cfg.batch_size, cfg.digits, gen=gen),
                        sft_loss, desc="SFT")
        test = held(cfg.eval_size, cfg.digits)
        acc = acc_of(model, test, cfg.digits, seed=cfg.seed)
        greedy = acc_of(model, test, cfg.digits, temperature=0.0)
    return SFTResult(model, history, acc, greedy, cfg)


def main(argv: list[str] | None = None) -> SFTResult:
    cfg = SFTConfig.cli(argv, description="Supervised warm-up of the tiny GPT on addition.")
    res = train_sft(cfg)
    print(f"SFT: final loss {res.history.last('loss'):.3f}, held-out pass@1 {res.accuracy:.3f} "
          f"(greedy {res.greedy_accuracy:.3f})")
    return res


if __name__ == "__main__":
    run_cli(main)
