"""Every trainer, killed mid-run and resumed from its last checkpoint, ends exactly where
an uninterrupted run ends.

For each trainer of ``test_determinism.TRAINERS`` (the functions notebooks and claim tests
call), on the same tiny configs with checkpoints every 2 steps:

1. an uninterrupted run, counting its optimizer steps;
2. the same run killed (``KeyboardInterrupt``) inside an optimizer step: inside the very
   last one (so in the last stage of multi-stage trainers: reward model then policy, SFT
   then GRPO, one fit per preference model), and midway;
3. a third run with ``resume=True`` in the same folder, which must return exactly what run 1
   returned (parameters, metrics, samples, episode logs: everything but wall-clock times).
   After the late kill it must also take fewer optimizer steps than run 1, so that it
   provably resumed rather than restarted.
"""

from __future__ import annotations

import importlib
import shutil

import pytest
import torch

from test_determinism import TRAINERS, flatten


class Crash(KeyboardInterrupt):
    """What killing the process looks like to Python (Ctrl-C)."""


def run(module, function, config, overrides, ckpt_dir, monkeypatch, crash_at=None):
    """(flattened result, optimizer steps taken); with ``crash_at``, die at that step."""
    mod = importlib.import_module(f"minimal.{module}")
    cfg = getattr(mod, config).from_preset("laptop", **overrides, ckpt_dir=str(ckpt_dir),
                                           ckpt_every=2, resume=True, progress=False)
    calls = {"n": 0}
    step = torch.optim.AdamW.step

    def counting_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash
        return step(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch.optim.AdamW, "step", counting_step)
        result = getattr(mod, function)(cfg)
    return flatten(result), calls["n"]


@pytest.mark.parametrize("module, function, config, overrides", TRAINERS,
                         ids=[f"{m}.{f}" for m, f, _, _ in TRAINERS])
def test_resume_after_a_crash_matches_an_uninterrupted_run(module, function, config, overrides,
                                                           tmp_path, monkeypatch):
    args = (module, function, config, overrides)
    folder = tmp_path / "ckpt"
    whole, n_steps = run(*args, folder, monkeypatch)
    assert any(folder.rglob("*.pt")), f"{module}.{function} wrote no checkpoint"
    for crash_at in (n_steps, n_steps // 2 + 1):  # inside the very last step, and midway
        shutil.rmtree(folder)
        with pytest.raises(Crash):
            run(*args, folder, monkeypatch, crash_at=crash_at)
        resumed, n_resumed = run(*args, folder, monkeypatch)
        assert resumed == whole, (f"{module}.{function}: killed in optimizer step {crash_at} "
                                  f"of {n_steps}, the resumed run differs")
        if crash_at == n_steps:  # a checkpoint was written before: the rerun must use it
            assert n_resumed < n_steps, (
                f"{module}.{function}: killed in its last step, the resumed run took all "
                f"{n_resumed} steps again: it restarted instead of resuming")
