"""Seeding: one call makes a run repeat exactly on CPU.

Python's ``random``, NumPy's global generator and torch's generators are all
seeded from one integer.  Code in ``minimal/`` prefers explicit generators
(``numpy.random.default_rng(seed)``, ``torch.Generator().manual_seed(seed)``)
so that results do not depend on what ran before; :func:`seed_everything` is
the safety net for library code that draws from the global state.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy and torch (CPU and CUDA) with ``seed``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng(seed: int) -> np.random.Generator:
    """A NumPy generator of its own, independent of the global state."""
    return np.random.default_rng(seed)


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
