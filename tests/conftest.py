"""Shared test setup: no network anywhere, 2 CPU threads, and a tiny char-LM config."""

import importlib.util
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

OFFLINE = Path(__file__).resolve().parent / "offline"


def pytest_configure(config):
    """Block the network here and in every process the suite starts (notebook kernels too)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(OFFLINE), os.environ.get("PYTHONPATH", "")) if p)
    spec = importlib.util.spec_from_file_location("offline_guard", OFFLINE / "sitecustomize.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.fixture
def tiny_lm_overrides():
    """Overrides that make any CharLMConfig preset run in well under a second on CPU."""
    return dict(device="cpu", steps=6, batch_size=4, block_size=16, n_layer=1, n_head=2,
                n_embd=16, warmup_steps=2, log_every=1, eval_batches=1, progress=False)
