"""Every trainer, killed mid-run and resumed from its last checkpoint, ends exactly where
an uninterrupted run ends.

For each trainer of ``test_determinism.TRAINERS`` (the functions notebooks and claim tests
call), on the same tiny configs with checkpoints every 2 steps:

1. an uninterrupted run, counting its optimizer steps and noting after how many of them
   each checkpoint was written;
2. the same run killed (``KeyboardInterrupt``) inside an optimizer step: the first step
   after the first checkpoint, and the very last step (so in the last stage of multi-stage
   trainers: reward model then policy, SFT then GRPO, one fit per preference model);
3. a third run with ``resume=True`` in the same folder, which must return exactly what run 1
   returned (parameters, metrics, samples, episode logs: everything but wall-clock times)
   and take exactly the optimizer steps that came after the last checkpoint before the
   kill: every stage finished before the kill is loaded, not retrained, and the stage that
   was killed continues from its checkpoint rather than starting over.
"""

from __future__ import annotations

import importlib
import shutil

import pytest
import torch
from test_determinism import TRAINERS, flatten

# The trainers with checkpoints.  Chapter 2's study runner (reasoning_study) has none: its jobs
# are runs of grpo and prompt_curriculum, whose resume is tested here, and a killed study is
# re-run from the start.
RESUMABLE = [t for t in TRAINERS
             if "ckpt_dir" in getattr(importlib.import_module(f"minimal.{t[0]}"), t[2]).field_names()]


class Crash(KeyboardInterrupt):
    """What killing the process looks like to Python (Ctrl-C)."""


def run(module, function, config, overrides, ckpt_dir, monkeypatch, crash_at=None):
    """(flattened result, optimizer steps taken, steps done at each checkpoint write)."""
    mod = importlib.import_module(f"minimal.{module}")
    cfg = getattr(mod, config).from_preset("laptop", **overrides, ckpt_dir=str(ckpt_dir),
                                           ckpt_every=2, resume=True, progress=False)
    calls = {"n": 0, "writes": []}
    # Every optimizer in minimal/ is an AdamW or an Adam; torch gives each class its own
    # (profiling) step once an instance exists, so both are wrapped.
    steps = {cls: cls.step for cls in (torch.optim.Adam, torch.optim.AdamW)}
    save = torch.save

    def counting(cls):
        def step(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise Crash
            return steps[cls](self, *args, **kwargs)
        return step

    def noting_save(*args, **kwargs):
        calls["writes"].append(calls["n"])
        return save(*args, **kwargs)

    with monkeypatch.context() as m:
        for cls in steps:
            m.setattr(cls, "step", counting(cls))
        m.setattr(torch, "save", noting_save)
        result = getattr(mod, function)(cfg)
    return flatten(result), calls["n"], calls["writes"]


@pytest.mark.parametrize("module, function, config, overrides", RESUMABLE,
                         ids=[f"{m}.{f}" for m, f, _, _ in RESUMABLE])
def test_resume_after_a_crash_matches_an_uninterrupted_run(module, function, config, overrides,
                                                           tmp_path, monkeypatch):
    args = (module, function, config, overrides)
    folder = tmp_path / "ckpt"
    whole, n_steps, writes = run(*args, folder, monkeypatch)
    assert writes, f"{module}.{function} wrote no checkpoint"
    for crash_at in (writes[0] + 1, n_steps):  # just after the first checkpoint; the last step
        shutil.rmtree(folder)
        with pytest.raises(Crash):
            run(*args, folder, monkeypatch, crash_at=crash_at)
        resumed, n_resumed, _ = run(*args, folder, monkeypatch)
        assert resumed == whole, (f"{module}.{function}: killed in optimizer step {crash_at} "
                                  f"of {n_steps}, the resumed run differs")
        last_good = max(w for w in writes if w < crash_at)
        assert n_resumed == n_steps - last_good, (
            f"{module}.{function}: killed in step {crash_at} of {n_steps}, after a checkpoint "
            f"at step {last_good}; the resumed run took {n_resumed} steps, not "
            f"{n_steps - last_good}")
