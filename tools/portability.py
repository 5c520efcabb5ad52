"""Which notebook cells print numbers that depend on the processor?

    python tools/portability.py                      # every notebook, an AVX2-like machine
    python tools/portability.py chapters/02_rl_reasoning/grpo_from_a_verifier.ipynb

nbval compares each cell's stored text output with a fresh run, so a cell whose numbers
change with the processor fails on some machines.  torch picks its CPU kernels by
instruction set (AVX-512 here, AVX2 on many AMD and older Intel machines), and a long
training run amplifies their last-bit differences.  This tool re-executes notebooks (in
memory; nothing is saved) as if on another processor, by restricting torch's and MKL's
kernels to AVX2 (``ATEN_CPU_CAPABILITY=avx2``, ``MKL_ENABLE_INSTRUCTIONS=AVX2``), and
lists the code cells whose text output differs from the stored one.  Each cell it lists
must either print something the processor cannot change, or be declared
machine-dependent in ``tests/test_portable_outputs.py`` (``MACHINE_DEPENDENT``), which
tags it so that nbval runs it without comparing its output.

A development check, not part of the test suite (it runs the whole book once more).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from notebooks import notebooks  # noqa: E402

OTHER_PROCESSOR = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def cell_texts(nb) -> dict[str, str]:
    """Text a reader sees from each code cell (stdout and plain-text results), by cell id."""
    texts = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                parts.append(out["text"])
            elif "text/plain" in out.get("data", {}) and \
                    "application/vnd.jupyter.widget-view+json" not in out["data"]:
                parts.append(out["data"]["text/plain"])
        texts[cell.id] = "".join(parts).strip()
    return texts


def differing_cells(path: Path, env: dict[str, str]) -> list[tuple[int, str]]:
    stored = nbformat.read(path, as_version=4)
    fresh = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(fresh, timeout=900, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    before, after = cell_texts(stored), cell_texts(fresh)
    ids = [c.id for c in stored.cells]
    return [(ids.index(i), i) for i in before if before[i] != after.get(i)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--json", type=Path, help="also write the findings here")
    args = parser.parse_args(argv)
    found = {}
    for path in args.paths or notebooks():
        rel = str(path.resolve().relative_to(ROOT))
        cells = differing_cells(path, OTHER_PROCESSOR)
        found[rel] = [cell_id for _, cell_id in cells]
        print(f"{rel}: " + (", ".join(f"cell {i} ({cid})" for i, cid in cells) or "portable"),
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    main()
