"""Shared test setup: one CPU thread (benchmarks/threads.md), a tiny char-LM config, the built
book.  The network guard is the repository's root ``conftest.py``, loaded by every pytest run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_lm_overrides():
    """Overrides that make any CharLMConfig preset run in well under a second on CPU."""
    return dict(device="cpu", steps=6, batch_size=4, block_size=16, n_layer=1, n_head=2,
                n_embd=16, warmup_steps=2, log_every=1, eval_batches=1, progress=False)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the whole book strictly (warnings are errors) into a temporary folder."""
    out = tmp_path_factory.mktemp("book")
    exe = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(exe), "build", str(ROOT), "-W", "-n", "--keep-going",
                           "--path-output", str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "WARNING" not in log, [l for l in log.splitlines() if "WARNING" in l]
    return out / "_build" / "html"
