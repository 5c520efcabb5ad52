"""Data parallelism for the shared loop: ``torchrun``, one share of each batch per process.

Launched as ``torchrun --nproc_per_node=N -m minimal.<module> ...``, every process (a
*rank*) runs the whole trainer.  :func:`minimal.core.train.train` then

* joins the process group (:func:`setup`: ``nccl`` on CUDA, ``gloo`` on CPU) and wraps
  the model in ``torch.nn.parallel.DistributedDataParallel`` (DDP), which averages the
  gradients of the ranks in ``backward``;
* draws the *same global batch* on every rank (every rank owns an identical loop
  generator, seeded from ``cfg.seed``) and trains on its contiguous share,
  ``shard(batch, rank, world)``.  With equal shares and a loss that is a mean over
  examples, the average of the ranks' gradients is the gradient of the whole batch, so
  the update is the one-process update up to the order of floating-point sums;
* averages the logged loss and metrics over the ranks; every rank keeps the same
  :class:`~minimal.core.train.History` (so the trainer's code after ``train`` runs
  unchanged on each rank), and only rank 0 writes checkpoints, shows the progress bar
  and prints (:func:`minimal.core.config.run_cli` silences the others' stdout).

The RL trainers (GRPO, the prompt curriculum, RLHF-PPO) generate rollouts inside
``get_batch``; here every rank generates the same whole rollout batch (the policies are
identical, so are the samples) and trains on its share.  That is simple and exact, but
the generation, the expensive part, is not divided.  A faster version would have each
rank generate only its share of the prompts with a seed derived from the rank
(``cfg.seed``, the step and the rank): then the batch-level statistics the rollout
computes (batch-std advantages, whitened GAE advantages, the logged reward) would need an
all-reduce, and the run would no longer equal a one-process run.

What is exact: a loss that is a mean over the examples of the batch (char-LM, ICL, DPT,
algorithm distillation, reward model, DPO, RLHF-PPO).  A loss normalised by a count that
varies between shares (SFT and GRPO divide by answer tokens or kept sequences) divides by
:func:`mean_count`, so that it too is the whole batch's loss; the logged metrics of such
trainers (GRPO's ``clipfrac``) are averages of the shares' values.  Randomness inside
``loss_fn`` (dropout) uses the torch RNG, which every rank seeds alike: the ranks then draw
the same masks for different examples, statistically but not bitwise a one-process run.

Evaluation hooks (``evaluate=``) run on every rank: the models are identical, so are the
results, and the ranks would wait for each other at the next step anyway.

One process without ``torchrun`` (``WORLD_SIZE`` unset or 1) touches none of this.
"""

from __future__ import annotations

import atexit
import dataclasses
import os

import torch
import torch.distributed as dist
from torch import nn

from minimal.core.config import RunError


def world_size() -> int:
    """Processes in this run: ``WORLD_SIZE`` as ``torchrun`` sets it, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index, 0 to ``world_size() - 1`` (``RANK``); 0 without torchrun."""
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    """Rank 0: the process that writes checkpoints, shows progress and prints."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on CUDA, this process's own GPU (``LOCAL_RANK``); else ``device``.

    It also becomes the current CUDA device, so ``.to("cuda")`` in a trainer lands there.
    """
    if device.type == "cuda" and is_distributed():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def setup(device: torch.device) -> None:
    """Join the process group once per process: ``nccl`` for CUDA, ``gloo`` for CPU."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        dist.init_process_group(backend, device_id=local_device(device))
    else:
        dist.init_process_group(backend)
    atexit.register(_leave)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def refuse(what: str) -> None:
    """For code that runs in one process only: a :class:`RunError` under torchrun."""
    if is_distributed():
        raise RunError(f"{what} runs in one process only; it has its own loop without "
                           f"data parallelism; run it without torchrun (WORLD_SIZE = "
                           f"{world_size()})")


# ------------------------------------------------------------------ sharding
def shard(batch, rank: int, world: int):
    """Rank ``rank``'s contiguous share of ``batch``, which every rank drew in full.

    The protocol, applied recursively:

    * an object with a method ``shard(rank, world)`` returns its own share (for a batch
      whose parts must be split in some other way);
    * a tensor with at least one dimension is split along dim 0 into ``world`` equal
      slices; its length must be a multiple of ``world`` (equal shares keep the
      gradient average exact);
    * a tuple, list or dict is a container: each element is sharded;
    * a dataclass instance: each field is sharded, giving a new instance;
    * ``None``, numbers, strings and 0-dim tensors are batch-level values, kept whole
      (the ``stats`` dict of a rollout, a temperature).

    Anything else is a ``TypeError`` that names the type.
    """
    if hasattr(batch, "shard") and callable(batch.shard) and not isinstance(batch, type):
        return batch.shard(rank, world)
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            return batch
        n = batch.size(0)
        if n % world:
            raise ValueError(f"a batch of {n} rows does not split evenly over {world} "
                             f"processes; make the batch size a multiple of {world}")
        size = n // world
        return batch[rank * size:(rank + 1) * size]
    if isinstance(batch, (tuple, list)):
        parts = [shard(b, rank, world) for b in batch]
        return type(batch)(*parts) if hasattr(batch, "_fields") else type(batch)(parts)
    if isinstance(batch, dict):
        return {k: shard(v, rank, world) for k, v in batch.items()}
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: shard(getattr(batch, f.name), rank, world)
                                             for f in dataclasses.fields(batch) if f.init})
    if batch is None or isinstance(batch, (bool, int, float, str)):
        return batch
    raise TypeError(f"cannot split a batch of type {type(batch).__name__} over processes: "
                    "return tensors, or tuples, lists, dicts or dataclasses of them, from "
                    "get_batch, or give the type a method shard(rank, world)")


# ----------------------------------------------------------------- averaging
def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the ranks (one all-reduce); every rank gets the result."""
    if not is_distributed() or not values:
        return dict(values)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / world_size()).tolist()))


def mean_count(n: torch.Tensor) -> torch.Tensor:
    """A loss's normaliser, a count over this rank's share (tokens, sequences), averaged
    over the ranks; in one process ``n`` itself.

    A loss ``sum / count`` whose count differs between shares would become the average of
    the shares' means.  Dividing each rank's sum by the mean count instead makes the
    average over ranks ``sum of all sums / whole count``: the whole batch's loss.
    """
    if not is_distributed():
        return n
    total = n.detach().to(torch.float64 if n.device.type == "cpu" else torch.float32).clone()
    dist.all_reduce(total)
    return (total / world_size()).to(torch.result_type(n, 1.0))


class LossModule(nn.Module):
    """``loss_fn(model, batch)`` as a module, so that DDP sees the whole loss as its forward.

    DDP prepares its gradient averaging in ``forward``; a trainer's loss calls the model's
    own methods (``token_logprobs``, ``hidden``), not only ``model(x)``.  Wrapping the loss
    makes every use of the parameters part of the one forward DDP runs.
    """

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch):
        return self.loss_fn(self.model, batch)


def wrap(model: nn.Module, loss_fn, device: torch.device) -> nn.Module:
    """The DDP module whose ``forward(batch)`` returns ``loss_fn(model, batch)``."""
    setup(device)
    return nn.parallel.DistributedDataParallel(LossModule(model, loss_fn), device_ids=None)


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
