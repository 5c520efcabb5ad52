"""The one training loop every gradient-based trainer in the book shares.

A trainer supplies two functions and a :class:`~minimal.core.config.TrainConfig`:

* ``get_batch(generator) -> batch`` draws the next batch, taking all of its
  randomness from ``generator`` (a ``torch.Generator`` the loop owns, seeded
  from ``cfg.seed`` and saved in checkpoints, so a resumed run draws the same
  batches an uninterrupted one would);
* ``loss_fn(model, batch) -> (loss, metrics)`` returns a scalar loss and a dict
  of floats to log under stable names;
* optionally ``evaluate(step)``, called every ``eval_every`` steps (before step 0,
  ``eval_every``, ...) and once after the last, for held-out scores and snapshots.
  Nothing else in a trainer evaluates: ``get_batch`` only draws and ``loss_fn`` only
  computes the loss.

The loop does the rest, the same way for every chapter: device choice, bf16
autocast on CUDA, AdamW that decays only weight matrices, a warm-up plus cosine
learning-rate schedule, global grad-norm clipping, a tqdm progress bar,
periodic checkpoints written atomically, and resume.  Launched by ``torchrun``
(``WORLD_SIZE > 1``) it trains data-parallel: every rank draws the same batch and trains
on its share, DDP averages the gradients, rank 0 alone writes checkpoints
(:mod:`minimal.core.distributed`).  Introduced in the front matter ("How to run the code").
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from minimal.core import distributed
from minimal.core.config import RunError, TrainConfig

Batch = Any
LossFn = Callable[[nn.Module, Batch], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class History:
    """Metrics recorded every ``cfg.log_every`` steps: ``metrics[name][i]`` at ``steps[i]``."""

    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def record(self, step: int, values: dict[str, float]) -> None:
        self.steps.append(step)
        for name, value in values.items():
            self.metrics.setdefault(name, []).append(float(value))

    def last(self, name: str) -> float:
        return self.metrics[name][-1]


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block, then restore the caller's setting.

    The book's small models do thousands of tiny tensor operations; extra intra-op
    threads only add synchronisation, which made a notebook over 20x slower on a
    busy 2-core machine (``benchmarks/profile.md``).  Trainers of tabular-sized
    models wrap their loop in this.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' -> a torch.device; asking for absent CUDA is an error.

    Under torchrun on CUDA it is this process's GPU (``LOCAL_RANK``), made current."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device = 'cuda' but torch.cuda.is_available() is False; "
                           "use device=cpu or device=auto")
    return distributed.local_device(torch.device(name))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases, norms and gains are not decayed)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to ``min_lr_ratio * lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


# ---------------------------------------------------------------- checkpoints
CHECKPOINT_FORMAT = 1  # bump when the layout of the saved dict changes
# Fields a resumed run may change without changing what it computes up to the saved step
# (steps may grow to train longer; the LR schedule then follows the new length).
RESUME_MAY_CHANGE = {"resume", "progress", "steps", "log_every", "ckpt_every", "ckpt_dir", "device"}


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic on POSIX and Windows


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only).

    A file that is not one (empty, truncated, other bytes) raises :class:`RunError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # empty or truncated file, not a torch file, unsafe pickled objects
        # torch's first sentence only: its advice to retry with weights_only=False would run
        # whatever code the file holds, and does not fit a file that is simply damaged
        first = str(exc).strip().split("\n")[0].split(". ")[0]
        why = "the file is empty" if path.stat().st_size == 0 else f"{type(exc).__name__}: {first}"
        raise RunError(f"checkpoint {path} is corrupt or not a checkpoint of this code ({why}); "
                       "delete it or pick another ckpt_dir") from exc
    if not isinstance(state, dict):
        raise RunError(f"checkpoint {path} is corrupt or not a checkpoint of this code (it holds "
                       f"a {type(state).__name__}); delete it or pick another ckpt_dir")
    return state


def checkpoint_state(model, opt, gen, step, history, cfg, extra=None) -> dict:
    """Everything a run needs to continue after ``step``: weights, optimizer, RNGs, log.

    Used by :func:`train` and by trainers with their own loop (PPO's rollouts).
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "data_rng": gen.get_state(),
        "torch_rng": torch.get_rng_state(),  # dropout and sampling inside loss_fn
        "history": {"steps": history.steps, "metrics": history.metrics},
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    if extra is not None:
        state["extra"] = extra.state_dict()  # a trainer's own state between steps
    return state


def check_resumable(state: dict, cfg: TrainConfig, path) -> None:
    """Raise :class:`RunError` unless a run with ``cfg`` can continue from ``state``: the same
    format version, the same trainer, the same config up to ``RESUME_MAY_CHANGE``, and a
    step no later than ``cfg.steps``."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"{path}: checkpoint format {state.get('format')!r}, expected "
                       f"{CHECKPOINT_FORMAT}; it was written by another version of the code: "
                       "delete it or use a new ckpt_dir")
    saved, now = state["config"], cfg.to_dict()
    foreign = sorted(set(saved) ^ set(now))
    if foreign:
        raise RunError(f"{path} was written by another trainer or another version of this "
                       f"one (fields {', '.join(foreign)} are in one config only); "
                       "use a new ckpt_dir")
    changed = sorted(k for k in now if k not in RESUME_MAY_CHANGE and saved.get(k) != now[k])
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        raise RunError(f"{path} was written with a different config ({diffs}); "
                       "resume with the same settings or use a new ckpt_dir")
    if cfg.steps < state["step"]:
        raise RunError(f"{path} is at step {state['step']}, past steps = {cfg.steps}; "
                       "resume with at least as many steps or use a new ckpt_dir")


def restore_checkpoint(state, model, opt, gen, cfg, path, extra=None) -> tuple[int, History]:
    """Load ``state`` (from :func:`checkpoint_state`) in place; return (step, history).

    Refuses (:func:`check_resumable`) a checkpoint of another format version, of another
    trainer or of a different config.
    """
    check_resumable(state, cfg, path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["data_rng"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if extra is not None:
        if "extra" not in state:
            raise RunError(f"{path} has no trainer state to resume from; it was written "
                           "by a run of another trainer: use a new ckpt_dir")
        extra.load_state_dict(state["extra"])
    history = History(list(state["history"]["steps"]),
                      {k: list(v) for k, v in state["history"]["metrics"].items()})
    return int(state["step"]), history


# ------------------------------------------------------------- rollout reuse
class EveryK:
    """``get_batch`` that collects a fresh batch every ``k`` steps and hands it back in between.

    The RL trainers on language models reuse each rollout for ``k`` optimizer steps
    (PPO's epochs, GRPO's ``updates_per_batch``).  Pass the object as ``extra`` too: its
    step counter is checkpointed.  Checkpoints must fall between rollouts (``ckpt_every``
    a multiple of ``k``), so the current batch never needs saving.
    """

    def __init__(self, collect: Callable[[torch.Generator], Batch], k: int):
        self.collect, self.k = collect, k
        self.step, self.batch = 0, None

    def __call__(self, gen: torch.Generator) -> Batch:
        if self.step % self.k == 0:
            self.batch = self.collect(gen)
        self.step += 1
        return self.batch

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


# ------------------------------------------------------------------ preflight
def preflight(cfg: TrainConfig, overwrite: bool = False) -> None:
    """Check, before any training, what would otherwise fail late or be lost: raise RunError.

    The command line runs this (``Config.cli`` calls ``cfg.preflight``); library calls do
    not, so a notebook that reruns a cell with the same ``ckpt_dir`` overwrites it as before.

    * ``device = 'cuda'`` needs a GPU that torch can use;
    * ``ckpt_dir`` must be a folder, or not exist yet, where this process can create files;
    * without ``resume`` it must not hold checkpoints (``latest.pt``, the run's own or a
      stage's in a subfolder) unless ``overwrite`` (``--overwrite``) says to replace them;
    * with ``resume`` every checkpoint there must load, and ``ckpt_dir/latest.pt`` must be
      one this run can continue (:func:`check_resumable`).  A stage's checkpoint is checked
      against the stage's config when the stage starts.
    """
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RunError("device = 'cuda' but torch.cuda.is_available() is False on this machine; "
                       "use --set device=cpu (or device=auto), or the laptop preset")
    if cfg.ckpt_dir is None:
        return
    folder = Path(cfg.ckpt_dir)
    existing = folder
    while not existing.exists():  # the nearest folder that exists: the run creates the rest
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"lies under {str(existing)!r}, a file"
        raise RunError(f"ckpt_dir = {cfg.ckpt_dir!r} {where}, not a folder; "
                       "pick another ckpt_dir (--set ckpt_dir=PATH)")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass  # the probe file is removed as the block ends
    except OSError as exc:
        raise RunError(f"ckpt_dir = {cfg.ckpt_dir!r}: cannot create files in {str(existing)!r} "
                       f"({exc.strerror}); pick a writable ckpt_dir (--set ckpt_dir=PATH)"
                       ) from None
    found = sorted(folder.rglob("latest.pt")) if folder.is_dir() else []
    if overwrite and cfg.resume:
        raise RunError("--overwrite and resume = True contradict each other; drop one")
    if found and not cfg.resume and not overwrite:
        names = ", ".join(str(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
        raise RunError(f"ckpt_dir = {cfg.ckpt_dir!r} already holds checkpoints ({names}), which "
                       "this run would overwrite; continue that run with --set resume=true, "
                       "replace them with --overwrite, or pick another ckpt_dir")
    if cfg.resume:
        states = {path: load_checkpoint(path) for path in found}  # each one must load
        latest = folder / "latest.pt"
        if latest in states:
            check_resumable(states[latest], cfg, latest)


# ----------------------------------------------------------------------- loop
def update(model: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
           cfg: TrainConfig, where: str) -> None:
    """One optimizer update: refuse a non-finite loss, backpropagate, clip, step.

    Trainers with their own outer loop (PPO's rollouts then epochs) call this too,
    so every update in the book is done the same way.
    """
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss became {loss.item()} at {where}; "
                                 + divergence_hint(cfg, opt))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()


def divergence_hint(cfg: TrainConfig, opt: torch.optim.Optimizer) -> str:
    """What to try after a non-finite loss.  Before the optimizer's first step (its state is
    still empty) the parameters are the initial ones, so the learning rate cannot be the
    cause; the numbers set away from the defaults are named either way."""
    moved = [f"{f.name} = {getattr(cfg, f.name)!r}" for f in dataclasses.fields(cfg)
             if isinstance(getattr(cfg, f.name), (int, float))
             and not isinstance(getattr(cfg, f.name), bool)
             and f.name not in RESUME_MAY_CHANGE and getattr(cfg, f.name) != f.default]
    values = (f"the values set away from the defaults ({', '.join(moved)})" if moved
              else "the config's values and the data")
    if not opt.state:
        return f"this is before any update, so not the learning rate: check {values}"
    clip = " or grad_clip > 0 (now 0)" if cfg.grad_clip == 0 else ""
    return f"training diverged: try a lower lr (now {cfg.lr}){clip}, or check {values}"


def train(
    model: nn.Module,
    cfg: TrainConfig,
    get_batch: Callable[[torch.Generator], Batch],
    loss_fn: LossFn,
    desc: str = "train",
    extra=None,
    evaluate: Callable[[int], None] | None = None,
    eval_every: int = 0,
) -> History:
    """Run ``cfg.steps`` optimizer steps of ``loss_fn`` on batches from ``get_batch``.

    Returns the :class:`History` of logged metrics (``loss`` and ``lr`` are
    always there).  With ``cfg.ckpt_dir`` set, ``latest.pt`` there is rewritten
    every ``cfg.ckpt_every`` steps and at the end, together with the config and
    a format version; with ``cfg.resume`` the run continues from it and ends
    with the same parameters as a run that was never interrupted.  Resuming
    from a checkpoint written with other settings (beyond ``RESUME_MAY_CHANGE``)
    is an error that lists the differences.

    ``extra`` is for trainers whose ``get_batch`` keeps state between steps (an RL
    sampler, a value model): any object with ``state_dict()`` and
    ``load_state_dict(state)``; its state goes into every checkpoint and comes back on
    resume, so that those runs resume exactly too.

    ``evaluate(step)`` is the evaluation hook: it runs before optimizer step ``step``
    whenever ``step % eval_every == 0``, and once more after the last step (with
    ``step = cfg.steps``, the model in eval mode).  What it records belongs in ``extra``
    so that a resumed run keeps the evaluations made before the checkpoint.

    Under ``torchrun`` (:mod:`minimal.core.distributed`) each rank trains on its share of
    every batch through DDP; the History, the same on every rank, holds the losses and
    metrics averaged over the ranks; rank 0 alone shows progress and writes checkpoints;
    ``evaluate`` runs on every rank.  ``cfg.compile`` compiles the model in place
    (``nn.Module.compile``) before training.
    """
    if evaluate is not None and not (isinstance(eval_every, int) and eval_every > 0):
        raise ValueError(f"eval_every must be a positive int with an evaluate hook, got {eval_every!r}")
    device = resolve_device(cfg.device)
    model.to(device)
    if cfg.compile:
        model.compile()  # in place: state_dict keys and the model's own methods stay as they are
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, start = History(), 0
    ckpt = Path(cfg.ckpt_dir) / "latest.pt" if cfg.ckpt_dir else None
    if cfg.resume and ckpt is not None and ckpt.exists():  # every rank loads the same file
        start, history = restore_checkpoint(load_checkpoint(ckpt), model, opt, gen, cfg, ckpt,
                                            extra)
    use_bf16 = cfg.dtype == "bfloat16"
    world, rank, main = distributed.world_size(), distributed.rank(), distributed.is_main()
    if world > 1:  # torchrun: DDP over the loss, each rank on its share of every batch
        ddp = distributed.wrap(model, loss_fn, device)

    model.train()
    bar = tqdm(range(start, cfg.steps), desc=desc, disable=not (cfg.progress and main),
               initial=start, total=cfg.steps, leave=False)
    for step in bar:
        if evaluate is not None and step % eval_every == 0:
            evaluate(step)  # the model after `step` updates
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = get_batch(gen)
        done = step + 1
        log = done % cfg.log_every == 0 or done == cfg.steps
        if world > 1:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, metrics = ddp(distributed.shard(batch, rank, world))
            # the mean over ranks, every step: all ranks see a non-finite loss and stop together
            loss_value = distributed.mean_over_ranks({"loss": loss.detach()})["loss"]
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss became {loss_value} at step {step} ({desc}); "
                                         + divergence_hint(cfg, opt))
            if log:
                metrics = distributed.mean_over_ranks(metrics)
        else:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, metrics = loss_fn(model, batch)
        update(model, opt, loss, cfg, where=f"step {step} ({desc})")

        if log:
            value = loss.item() if world == 1 else loss_value
            history.record(done, {"loss": value, "lr": opt.param_groups[0]["lr"], **metrics})
            bar.set_postfix(loss=f"{value:.3f}")
        if main and ckpt is not None and (done % cfg.ckpt_every == 0 or done == cfg.steps):
            save_checkpoint(ckpt, checkpoint_state(model, opt, gen, done, history, cfg, extra))
    bar.close()
    model.eval()
    if evaluate is not None:
        evaluate(cfg.steps)  # the trained model, on every rank (the same model on each)
    return history


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
