"""Data parallelism (``minimal.core.distributed``): two CPU processes under torchrun with gloo.

Each launch runs ``tests/distributed_worker.py`` on both ranks; the one-process reference
runs the same worker without torchrun.  Measured on the tiny configs below (torch 2.13,
CPU, one thread per process), two processes differ from one by at most 1.4e-6 in the
char-LM's parameters after 6 AdamW steps and by at most 1.7e-5 in any number any of the
ten trainers returns (RLHF-PPO's policy): the order of floating-point sums, nothing more.
The tolerances below leave about a factor of 7 to 10 of room.  About 25 s on 2 cores.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minimal.core import distributed
from minimal.core.config import RunError

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed_worker.py"
SHARED_LOOP = ["char_lm", "reward_model", "dpo", "icl_training", "dpt",
               "algorithm_distillation", "sft", "grpo", "prompt_curriculum", "rlhf_ppo"]


def launch(out: Path, *specs: str, processes: int = 2, env: dict | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    """The worker on ``processes`` ranks (torchrun, gloo) or, for 1, as a plain process."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]
    proc = subprocess.run([*torchrun, str(WORKER), str(out), *specs], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    if check:
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def result(out: Path, name: str, rank: int = 0):
    with open(out / f"{name}.rank{rank}.pkl", "rb") as f:
        return pickle.load(f)


def max_difference(a, b, path: str = "") -> tuple[float, str]:
    """Largest |a - b| over the floats of two flattened results; inf where they differ otherwise."""
    if isinstance(a, dict):
        if set(a) != set(b):
            return math.inf, f"{path}: keys {sorted(set(a) ^ set(b))}"
        return max((max_difference(a[k], b[k], f"{path}/{k}") for k in a), default=(0.0, path))
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return math.inf, f"{path}: length {len(a)} vs {len(b)}"
        return max((max_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))),
                   default=(0.0, path))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b), path
    return (0.0, path) if a == b else (math.inf, f"{path}: {a!r} vs {b!r}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every trainer on the shared loop under 2 processes and in one; the char-LM with checkpoints."""
    tmp = tmp_path_factory.mktemp("ddp")
    specs = [f"char_lm:ckpt_dir={tmp / 'ckpt_full'}", *SHARED_LOOP[1:]]
    launch(tmp / "two", *specs)
    launch(tmp / "one", *SHARED_LOOP, processes=1)
    return tmp


def test_two_processes_match_one_with_the_same_global_batch(runs):
    two, one = result(runs / "two", "char_lm"), result(runs / "one", "char_lm")
    assert result(runs / "two", "char_lm", rank=1) == two  # the ranks hold the same model
    diff, where = max_difference(one["model"], two["model"])
    assert diff < 1e-5, f"parameters differ by {diff:.2e} at {where}"  # measured 1.4e-6


@pytest.mark.parametrize("name", SHARED_LOOP)
def test_every_trainer_on_the_shared_loop_runs_under_two_processes(runs, name):
    two = result(runs / "two", name)
    assert result(runs / "two", name, rank=1) == two
    if name == "char_lm":
        return  # compared above (this one also wrote checkpoints)
    diff, where = max_difference(result(runs / "one", name), two)
    assert diff < 1e-4, f"{name}: two processes differ from one by {diff:.2e} at {where}"


def test_grpo_logs_the_same_loss_at_step_one(runs):
    one = result(runs / "one", "grpo")["history"]["metrics"]
    two = result(runs / "two", "grpo")["history"]["metrics"]
    assert two["loss"][0] == pytest.approx(one["loss"][0], abs=1e-6)
    assert two["reward"][0] == one["reward"][0]  # the same rollouts on every rank


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_result(runs, tmp_path):
    ckpt = tmp_path / "ckpt"
    killed = launch(tmp_path / "killed", f"char_lm:ckpt_dir={ckpt}", check=False,
                    env={"DIE_AFTER_CHECKPOINT": "1"})
    assert killed.returncode != 0 and (ckpt / "latest.pt").is_file()
    assert torch.load(ckpt / "latest.pt", weights_only=True)["step"] == 2
    launch(tmp_path / "resumed", f"char_lm:ckpt_dir={ckpt},resume=true")
    assert result(tmp_path / "resumed", "char_lm") == result(runs / "two", "char_lm")


# ------------------------------------------------------------- one process, no launch
def test_shard_splits_tensors_containers_and_dataclasses():
    from minimal.grpo import RolloutBatch

    x = torch.arange(12).view(6, 2)
    assert torch.equal(distributed.shard(x, 1, 2), x[3:])
    a, b = distributed.shard((x, {"y": x[:, 0]}), 0, 3)
    assert torch.equal(a, x[:2]) and torch.equal(b["y"], x[:2, 0])
    batch = RolloutBatch(x, x, x[:, 0], x, None, x[:2, 0], {"reward": 0.5})
    part = distributed.shard(batch, 1, 2)
    assert torch.equal(part.tokens, x[3:]) and torch.equal(part.success, x[1:2, 0])
    assert part.logp_ref is None and part.stats == {"reward": 0.5}
    with pytest.raises(ValueError, match="multiple of 4"):
        distributed.shard(x, 0, 4)
    with pytest.raises(TypeError, match="cannot split a batch of type object"):
        distributed.shard(object(), 0, 2)


def test_one_process_is_untouched(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    n = torch.tensor(7)
    assert distributed.mean_count(n) is n and not distributed.is_distributed()
    assert distributed.mean_over_ranks({"loss": 1.5}) == {"loss": 1.5}


def test_ppo_on_gymnasium_refuses_torchrun(monkeypatch):
    from minimal.policy_gradient import PGConfig, train_pg

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RunError, match="one process only"):
        train_pg(PGConfig(steps=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_gpu_check_stops_at_once_without_cuda():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
        "nothing measured"]
