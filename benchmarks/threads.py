"""How many torch threads the book's trainers should use on a CPU: 1 or 2, idle or busy.

    python benchmarks/threads.py --out benchmarks/threads.md

Each case trains one of the book's models (a short run of its laptop preset) in a fresh
process with ``torch.set_num_threads(n)`` for n = 1 and 2, on the machine as it is
("as found": idle, or with whatever else runs; the load average is recorded) and while
two more processes spin on the CPU (what a shared CI runner, a laptop with a browser
open, or a second notebook does to the book).  The
cases are interleaved so that drift in the machine's speed hits both thread counts
alike; the table gives the median wall time of the training call (imports excluded) and
the ratio 2 threads / 1 thread.  Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

# name -> (import line, call); each call takes a few seconds on one idle core
CASES = {
    "tiny GPT char-LM (ch. 0)": (
        "from minimal.char_lm import CharLMConfig as C, train_char_lm as f",
        "f(C.from_preset('laptop', steps=150, progress=False))"),
    "reward model (ch. 3)": (
        "from minimal.reward_model import RewardModelConfig as C, train_reward_model as f",
        "f(C.from_preset('laptop', steps=100, progress=False))"),
    "DPO (ch. 3)": (
        "from minimal.dpo import DPOConfig as C, train_dpo as f",
        "f(C.from_preset('laptop', steps=60, progress=False))"),
    "GRPO (ch. 2)": (
        "from minimal.sft import train_sft; "
        "from minimal.grpo import GRPOConfig as C, train_grpo as f",
        "cfg = C.from_preset('laptop', steps=20, progress=False); f(cfg, train_sft(cfg.sft_config()).model)"),
    "ICL transformer (ch. 5)": (
        "from minimal.icl_training import ICLConfig as C, train_icl as f",
        "f(C.from_preset('laptop', steps=200, progress=False))"),
    "DPT (ch. 6)": (
        "from minimal.dpt import DPTConfig as C, train_dpt as f",
        "f(C.from_preset('laptop', steps=200, progress=False))"),
}

SNIPPET = """
import time, torch
torch.set_num_threads({threads})
{imports}
start = time.perf_counter()
{call}
print(time.perf_counter() - start)
"""


def run_case(name: str, threads: int) -> float:
    imports, call = CASES[name]
    code = SNIPPET.format(threads=threads, imports=imports, call=call)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def spinners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "threads.md")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args(argv)

    rows = []
    for condition, n_spin in (("as found", 0), ("+ 2 spinning processes", 2)):
        condition += f" (load {os.getloadavg()[0]:.1f})"
        procs = spinners(n_spin)
        try:
            for name in args.cases:
                times = {1: [], 2: []}
                for _ in range(args.repeats):
                    for threads in (1, 2):
                        times[threads].append(run_case(name, threads))
                one, two = statistics.median(times[1]), statistics.median(times[2])
                rows.append((condition, name, one, two))
                print(f"{condition:28s} {name:26s} 1 thread {one:6.1f} s   2 threads {two:6.1f} s"
                      f"   2/1 = {two / one:.2f}", flush=True)
        finally:
            for p in procs:
                p.kill()

    load = os.getloadavg()[0]
    lines = [
        "# Torch threads for the book's trainers: one or two, idle or busy", "",
        f"`python benchmarks/threads.py` on {os.cpu_count()} CPU cores ({platform.machine()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}), "
        f"median of {args.repeats} interleaved runs per cell, wall time of the training call. "
        "\"+ 2 spinning processes\" adds two processes that spin on the CPU, as a shared "
        "runner or a second notebook does; each condition shows the load average it started "
        f"at (when the run ended: {load:.1f}).", "",
        "| condition | trainer (short laptop run) | 1 thread (s) | 2 threads (s) | 2 threads / 1 thread |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {c} | {n} | {a:.1f} | {b:.1f} | {b / a:.2f} |" for c, n, a, b in rows]
    lines.append("")
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
