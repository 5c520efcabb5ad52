"""Execute the book's notebooks in a fresh kernel, store their outputs, and time them.

    python tools/notebooks.py run chapters/00_start/how_to_run.ipynb   # re-execute, save outputs
    python tools/notebooks.py time                                      # time every notebook

``run`` is how a notebook's committed outputs are produced (then ``make test`` proves
they reproduce).  ``time`` executes every notebook under ``chapters/`` without saving
it and writes ``benchmarks/notebook_times.csv`` (notebook, seconds, cores) and
``benchmarks/notebook_times.md`` (the same with per-chapter totals), which README's
chapter table quotes.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SLOW_CELL_S = 10  # a cell that runs longer than this shows a progress bar


def notebooks() -> list[Path]:
    found = sorted((ROOT / "chapters").rglob("*.ipynb"))
    return [p for p in found if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts]


def execute(path: Path, save: bool, cells: dict[int, float] | None = None) -> float:
    """Run ``path`` top to bottom in a fresh kernel; return wall-clock seconds.

    No execution timestamps are stored in the notebook (they are diff noise and say
    nothing about another machine); ``cells``, if given, receives each code cell's
    wall-clock seconds by cell index.
    """
    nb = nbformat.read(path, as_version=4)
    started: dict[int, float] = {}

    def on_start(cell, cell_index, **_):
        started[cell_index] = time.perf_counter()

    def on_done(cell, cell_index, **_):
        if cells is not None:
            cells[cell_index] = time.perf_counter() - started[cell_index]

    client = NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                            on_cell_execute=on_start, on_cell_executed=on_done,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if save:
        nbformat.write(nb, path)
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute notebooks and save their outputs")
    run.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    sub.add_parser("time", help="time every notebook; write benchmarks/notebook_times.*")
    args = parser.parse_args(argv)

    if args.cmd == "run":
        for path in args.paths or notebooks():
            if not path.is_file():
                parser.error(f"no such notebook: {path}")
            cells: dict[int, float] = {}
            total = execute(path, save=True, cells=cells)
            slow = ", ".join(f"cell {i} {t:.0f} s" for i, t in cells.items() if t > SLOW_CELL_S)
            print(f"{path}: {total:.1f} s" + (f" (over {SLOW_CELL_S} s: {slow})" if slow else ""),
                  flush=True)
        return

    times = {}
    for path in notebooks():
        rel = str(path.relative_to(ROOT))
        times[rel] = round(execute(path, save=False), 1)
        print(f"{rel}: {times[rel]} s", flush=True)
    cores = os.cpu_count()
    out = ROOT / "benchmarks"
    with open(out / "notebook_times.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["notebook", "seconds", "cores"])
        writer.writerows([k, v, cores] for k, v in times.items())
    chapters: dict[str, float] = {}
    for rel, seconds in times.items():
        chapter = Path(rel).parent.name
        chapters[chapter] = round(chapters.get(chapter, 0.0) + seconds, 1)
    lines = ["# Notebook execution times", "",
             f"Fresh kernel each, `make timings`, {cores} CPU cores, Python "
             f"{platform.python_version()} on {platform.machine()}.", "",
             "| notebook | seconds |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in times.items()]
    lines += ["", "| chapter folder | seconds |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in chapters.items()]
    lines += [f"| **whole book** | {round(sum(times.values()), 1)} |", ""]
    (out / "notebook_times.md").write_text("\n".join(lines))

if __name__ == "__main__":
    sys.exit(main())
