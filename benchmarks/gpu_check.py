"""Run every ``gpu`` preset for a bounded slice on one CUDA GPU and write ``benchmarks/gpu.md``.

    bash benchmarks/gpu_check.sh                 # all presets, about 8 minutes at most
    python benchmarks/gpu_check.py char_lm grpo  # some of them

Each preset runs in its own process (``python -m minimal.<module>``'s own ``main``, with
``--preset gpu --set steps=STEPS ...``), stopped after ``GPU_CHECK_TIMEOUT`` seconds, so
that the whole check fits in 8 minutes on one H100/H200-class GPU.  Per preset the report
gives the wall time, the throughput (tokens/s through the tiny GPT; env steps/s for PPO;
optimizer steps/s otherwise), the peak memory (``torch.cuda.max_memory_allocated``), the
summary line the trainer prints (the metric it reaches in that slice) and, for trainers
built on the tiny GPT, the model-FLOPs utilisation

    MFU = model FLOPs / s / peak bf16 FLOPs,

with model FLOPs = 6 N per token of a training forward pass (forward and backward) and
2 N per token of a forward pass without gradients (sampling, scoring), N the GPT's
parameters; the attention term is left out, as in the usual 6 N estimate.  The peak is
``GPU_PEAK_FLOPS`` (default 989e12, H100/H200 SXM bf16 dense).  With two or more GPUs
the char-LM also runs under ``torchrun`` on all of them, and the report gives its scaling
efficiency (throughput on N GPUs / N x throughput on one).

Environment: ``GPU_CHECK_STEPS`` (default 40 optimizer steps; stage steps are capped to
it, warm-up to a quarter of it), ``GPU_CHECK_TIMEOUT`` (default 22 s per preset), ``GPU_PEAK_FLOPS``.
Without CUDA it stops at once with one line and exit status 2.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # minimal/ from this checkout
OUT = ROOT / "benchmarks" / "gpu.md"
MARK = "GPU_CHECK_RESULT "
STEPS = int(os.environ.get("GPU_CHECK_STEPS", "40"))
TIMEOUT = float(os.environ.get("GPU_CHECK_TIMEOUT", "22"))
PEAK = float(os.environ.get("GPU_PEAK_FLOPS", "989e12"))
STAGE_STEPS = ("sft_steps", "rm_steps")  # steps of a stage a trainer runs first


def gpu_config(module: str):
    """The module's own config class (the one whose presets include ``gpu``)."""
    mod = importlib.import_module(f"minimal.{module}")
    from minimal.core.config import Config

    for value in vars(mod).values():
        if (isinstance(value, type) and issubclass(value, Config) and value.__module__ == mod.__name__
                and "gpu" in value.presets):
            return value
    return None


def presets() -> list[str]:
    from minimal.core.config import command_line_modules

    return [m for m in command_line_modules() if gpu_config(m) is not None]


def slice_overrides(cls) -> list[str]:
    """``--set`` items that bound a gpu preset to a short slice, without checkpoints."""
    names, gpu = cls.field_names(), cls.presets["gpu"]
    value = lambda name: gpu.get(name, cls.__dataclass_fields__[name].default)  # noqa: E731
    items = [f"steps={STEPS}", "progress=false"]
    if "warmup_steps" in names:
        items.append(f"warmup_steps={min(value('warmup_steps'), STEPS // 4)}")
    items += [f"{n}={min(value(n), STEPS)}" for n in STAGE_STEPS if n in names]
    if "ckpt_dir" in names:
        items.append("ckpt_dir=none")
    if "eval_every" in names:  # evaluate at the start and the end of the slice only
        items.append(f"eval_every={STEPS}")
    return items


# ------------------------------------------------------------------ one preset
def run_one(module: str) -> None:
    """Run one gpu preset's slice in this process; print its measurements as one JSON line."""
    import torch

    from minimal.core import gpt

    flops = {"total": 0.0, "tokens": 0}
    params: dict[int, int] = {}
    hidden = gpt.GPT.hidden

    def counted(self, idx):  # every pass through the tiny GPT: training, sampling, scoring
        n = params.setdefault(id(self), self.num_params())
        flops["total"] += (6 if torch.is_grad_enabled() else 2) * n * idx.numel()
        flops["tokens"] += idx.numel()
        return hidden(self, idx)

    gpt.GPT.hidden = counted
    torch.set_num_threads(1)  # as every command does (minimal.core.config.run_cli)
    cls = gpu_config(module)
    mod = importlib.import_module(f"minimal.{module}")
    argv = ["--preset", "gpu", "--set", *slice_overrides(cls)]
    torch.cuda.reset_peak_memory_stats()
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        mod.main(argv)
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cfg = cls.from_preset("gpu")
    env_steps = getattr(cfg, "num_envs", 0) * getattr(cfg, "num_steps", 0) * STEPS
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    result = {"module": module, "wall_s": wall, "steps": STEPS, "world": world,
              "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
              "tokens_per_s": flops["tokens"] * world / wall if flops["tokens"] else None,
              "mfu": flops["total"] / wall / PEAK if flops["total"] else None,
              "env_steps_per_s": env_steps / wall if env_steps else None,
              "steps_per_s": STEPS / wall, "summary": " / ".join(lines[-2:])[:300]}
    if int(os.environ.get("RANK", "0")) == 0:
        print(MARK + json.dumps(result), file=sys.__stdout__, flush=True)


def launch(module: str, nproc: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--one", module]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", __file__, "--one", module]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"module": module, "error": f"stopped after {TIMEOUT:g} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"module": module, "error": f"exit {proc.returncode}: {tail[:200]}"}


# ---------------------------------------------------------------------- report
def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[dict], scaling: dict | None, total: float) -> str:
    import torch

    name = torch.cuda.get_device_name(0)
    lines = ["# gpu presets on one GPU: a bounded slice each", "",
             f"`bash benchmarks/gpu_check.sh` on {name} ({torch.cuda.device_count()} visible), "
             f"torch {torch.__version__}, Python {platform.python_version()}; "
             f"{STEPS} optimizer steps per preset (stages capped alike), at most "
             f"{TIMEOUT:g} s each; peak bf16 {PEAK:.3g} FLOP/s for MFU.  Total {total:.0f} s.",
             "", "| preset | wall s | tokens/s | MFU | env steps/s | steps/s | peak GiB | "
             "what it printed |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['module']} | - | - | - | - | - | - | {r['error']} |")
            continue
        lines.append(f"| {r['module']} | {r['wall_s']:.1f} | {fmt(r['tokens_per_s'], ',.0f')} | "
                     f"{fmt(r['mfu'] and 100 * r['mfu'], '.1f')}{'%' if r['mfu'] else ''} | "
                     f"{fmt(r['env_steps_per_s'], ',.0f')} | {r['steps_per_s']:.2f} | "
                     f"{r['peak_mem_gib']:.2f} | {r['summary'].replace('|', '/')} |")
    if scaling:
        lines += ["", f"Scaling: char-LM under torchrun on {scaling['world']} GPUs, "
                      f"{fmt(scaling.get('tokens_per_s'), ',.0f')} tokens/s, efficiency "
                      f"{fmt(scaling.get('efficiency'), '.2f')} (N-GPU throughput / N x one GPU's)."]
    lines += ["", "Wall time includes the start of each process, CUDA's set-up and the "
                  "trainer's own data, stages and evaluations, so short slices understate "
                  "the throughput of a full run."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        run_one(argv[1])
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
              "nothing measured", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = []
    for module in argv or presets():
        rows.append(launch(module))
        print(json.dumps(rows[-1]), flush=True)
    scaling = None
    n = torch.cuda.device_count()
    one = next((r for r in rows if r["module"] == "char_lm" and "error" not in r), None)
    if n >= 2 and one is not None:
        scaling = launch("char_lm", n)
        if "error" not in scaling and one.get("tokens_per_s"):
            scaling["efficiency"] = scaling["tokens_per_s"] / (n * one["tokens_per_s"])
        scaling["world"] = n
    OUT.write_text(report(rows, scaling, time.perf_counter() - start), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
