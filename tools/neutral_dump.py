"""Dump every trainer's results, to prove a refactor numerically neutral: ``dump`` and ``compare``.

    python tools/neutral_dump.py dump before.pkl [--laptop]   # before the change
    python tools/neutral_dump.py dump after.pkl [--laptop]    # after it
    python tools/neutral_dump.py compare before.pkl after.pkl # identical, or where they differ

Each entry of ``tests/test_determinism.TRAINERS`` runs on one torch thread and is flattened
exactly as the determinism test flattens it (parameters, metrics, samples, scores); with
``--laptop`` each trainer runs its full laptop preset at its default seed (about four
minutes) instead of the test's tiny config at seed 3 (seconds).  ``compare`` reports the
first differing value of each trainer, so it says where, not only whether, numbers moved.
The structural step of ``minimal/`` (issue 18) was checked this way: both dumps identical.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def dump(out: str, laptop: bool) -> None:
    import test_determinism as td
    import torch

    torch.set_num_threads(1)
    results = {}
    for module, function, config, overrides in td.TRAINERS:
        t0 = time.perf_counter()
        if laptop:
            mod = importlib.import_module(f"minimal.{module}")
            cfg = getattr(mod, config).from_preset("laptop", progress=False)
            results[f"{function}:{config}"] = td.flatten(getattr(mod, function)(cfg))
        else:
            results[f"{function}:{config}"] = td.run(module, function, config, overrides, seed=3)
        print(f"{module}.{function}: {time.perf_counter() - t0:.1f} s", flush=True)
    with open(out, "wb") as f:
        pickle.dump(results, f)


def first_difference(x, y, path: str) -> str | None:
    if type(x) is not type(y):
        return f"{path}: {type(x).__name__} vs {type(y).__name__}"
    if isinstance(x, dict):
        if set(x) != set(y):
            return f"{path}: keys {sorted(set(x) ^ set(y))}"
        return next((d for k in x if (d := first_difference(x[k], y[k], f"{path}/{k}"))), None)
    if isinstance(x, (list, tuple)):
        if len(x) != len(y):
            return f"{path}: length {len(x)} vs {len(y)}"
        return next((d for i, (u, v) in enumerate(zip(x, y))
                     if (d := first_difference(u, v, f"{path}[{i}]"))), None)
    same = x == y or (x != x and y != y)  # nan equals nan here
    return None if same else f"{path}: {x!r} vs {y!r}"


def compare(a: str, b: str) -> int:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        before, after = pickle.load(fa), pickle.load(fb)
    bad = 0
    for key in sorted(set(before) | set(after)):
        if key not in before or key not in after:
            print(f"{key}: only in {'after' if key in after else 'before'}")
            bad += 1
        elif (d := first_difference(before[key], after[key], key)):
            print(d)
            bad += 1
    print(f"{len(before)} trainers compared: " + ("identical" if not bad else f"{bad} differ"))
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out")
    d.add_argument("--laptop", action="store_true", help="full laptop presets, default seeds")
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    args = p.parse_args()
    if args.cmd == "dump":
        dump(args.out, args.laptop)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
