"""Prove pyproject.toml's dependency floors and the notebooks' Colab install cell.

    python tools/floors.py                            # what `make floors` (and .ci/run) runs
    python tools/floors.py --with gymnasium==1.0.0    # the same with one version replaced
    python tools/floors.py --keep                     # keep the temporary folder afterwards

In a fresh virtual environment under a temporary folder it:

1. installs the LOWEST version every runtime dependency allows (each ``name>=X`` of
   ``[project].dependencies`` becomes ``name==X``), except torch: torch==2.13.0 (``$TORCH``),
   the only torch the reference machine installs without downloading a CUDA build, so torch's
   declared floor is not proven here; then the test tools (any version);
2. installs an older release of the book's code, as a Colab runtime used before may hold;
3. runs the notebooks' install cell (tools/colab_cell.py) as Colab would, pointed at a
   temporary git repository made from this working tree and tagged ``v<version>`` there (this
   repository is not tagged), and checks that it changed none of the preinstalled packages
   (``pip freeze`` before and after) and that the code it installed is this working tree's
   (``minimal.__version__`` and every file of the package compared), and that the cell stops
   with pip's message when the install fails;
4. runs the tests and notebooks below, which between them use every runtime dependency
   (from this working tree; the notebooks' kernels import the installed copy, checked equal).

Exits 1 if anything failed; each step's time is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = "rl-lm-book-minimal"
TORCH = os.environ.get("TORCH", "torch==2.13.0")
TEST_TOOLS = ["pytest", "nbval", "ipykernel", "hypothesis", "pyyaml"]
TESTS = [
    "tests/test_config.py",                     # presets, validation, CLI
    "tests/test_gridworld.py",                  # gymnasium env checker, numpy
    "tests/test_rl_basics_tabular.py",          # value/policy iteration, Q-learning
    "tests/test_rl_basics_policy_gradient.py",  # PPO on gymnasium's vector CartPole, torch
    "tests/test_env_snapshot.py",               # gymnasium environments in checkpoints
    "tests/test_gpt.py",                        # the tiny GPT (torch)
    "tests/test_train.py",                      # the training loop, checkpoints
    "tests/test_packaging.py",                  # version, install cell, packaging metadata
]
NOTEBOOKS = [  # strict nbval: printed numbers, widget reprs and tqdm bars must match exactly
    "chapters/06_in_context_decisions/bandits_and_regret.ipynb",    # ipywidgets, matplotlib
    "chapters/01_rl_basics/mdps_and_dynamic_programming.ipynb",     # + gymnasium gridworld
    "chapters/03_irl_alignment/nash_and_delta_learning.ipynb",      # + tqdm's notebook bar, torch
]


def floors() -> dict[str, str]:
    """``{name: version}`` from pyproject's dependencies, each of which must be ``name>=version``."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)>=([0-9][0-9A-Za-z.]*)", dep.strip())
        if not match:
            sys.exit(f"pyproject dependency {dep!r} is not of the form name>=version (a floor)")
        found[match[1].lower()] = match[2]
    return found


def run(cmd: list[str], cwd: Path | None = None, stdin: str | None = None,
        quiet: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd``; its output is shown only if it fails (or always when not ``quiet``)."""
    proc = subprocess.run(cmd, cwd=cwd, input=stdin, text=True,
                          capture_output=quiet, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if quiet and proc.returncode != 0:
        print((proc.stdout + proc.stderr)[-6000:])
    return proc


def freeze(python: Path) -> dict[str, str]:
    """``{name: freeze line}`` of what is installed in the environment of ``python``."""
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True,
                         text=True, check=True).stdout
    lines = {}
    for line in out.splitlines():
        name = re.split(r"\s*(?:==|@)\s*", line, maxsplit=1)[0].strip().lower().replace("_", "-")
        lines[name] = line.strip()
    return lines


def working_tree_files() -> list[str]:
    """Tracked and untracked, not ignored files of this working tree that exist."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return sorted(f for f in out.split("\0") if f and (ROOT / f).is_file())


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=floors", "-c", "user.email=floors@localhost",
           "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def snapshot_repo(repo: Path, version: str) -> str:
    """A git repository holding this working tree at tag ``v<version>``, one commit after an
    older release ``<version>.dev0`` whose package differs; returns the older commit."""
    for rel in working_tree_files():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    git(repo, "init", "-q")
    pyproject, init = repo / "pyproject.toml", repo / "minimal" / "__init__.py"
    current = pyproject.read_text(), init.read_text()
    pyproject.write_text(current[0].replace(f'version = "{version}"', f'version = "{version}.dev0"', 1))
    init.write_text(current[1] + "\nSTALE = True  # only in the older release\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "an older release")
    old = git(repo, "rev-parse", "HEAD")
    pyproject.write_text(current[0])
    init.write_text(current[1])
    git(repo, "commit", "-q", "-am", "this working tree")
    git(repo, "tag", f"v{version}")
    return old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with", dest="overrides", action="append", default=[], metavar="NAME==VER",
                        help="install this version instead of the floor (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    failures: list[str] = []

    def step(message: str) -> None:
        print(f"[{time.perf_counter() - start:5.0f} s] {message}", flush=True)

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    pins = {name: f"{name}=={floor}" for name, floor in floors().items()}
    torch_floor = pins.pop("torch", None)
    pins["torch"] = TORCH
    for override in args.overrides:
        pins[re.split(r"[=<>!~]", override, maxsplit=1)[0].strip().lower()] = override
    step(f"runtime dependencies: {' '.join(pins.values())}"
         + (f"  (pyproject's {torch_floor.replace('==', '>=')} is not what is installed: "
            "torch's floor is not tested here)" if torch_floor and torch_floor != TORCH else ""))

    tmp = Path(tempfile.mkdtemp(prefix="floors-"))
    try:
        venv, repo, outside = tmp / "venv", tmp / "repo", tmp / "elsewhere"
        repo.mkdir()
        outside.mkdir()
        python = venv / "bin" / "python"
        run([sys.executable, "-m", "venv", str(venv)]).check_returncode()
        install = run([str(python), "-m", "pip", "install", "-q", "--only-binary=numpy,matplotlib,torch",
                       *pins.values(), *TEST_TOOLS])
        if install.returncode != 0:
            print("the floors (with the test tools) do not install together")
            return 1
        step(f"fresh venv with the floors and {', '.join(TEST_TOOLS)}")

        old = snapshot_repo(repo, version)
        if run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                f"git+file://{repo}@{old}"]).returncode != 0:
            return 1
        step(f"an older release ({version}.dev0) installed, as in a runtime used before")

        before = freeze(python)
        cell = run([str(python), str(ROOT / "tools" / "colab_cell.py"), "show",
                    "--repo-url", f"file://{repo}"])
        as_in_colab = ("import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
                       "exec(compile(sys.stdin.read(), 'install cell', 'exec'))\n")
        proc = run([str(python), "-c", as_in_colab], cwd=outside, stdin=cell.stdout)
        if proc.returncode != 0:
            failures.append("the Colab install cell failed")
        after = freeze(python)
        changed = [f"{before[n]} -> {after.get(n, 'removed')}" for n in before
                   if n != DIST and after.get(n) != before[n]]
        added = sorted(set(after) - set(before))
        if changed:
            failures.append("the install cell changed preinstalled packages: " + "; ".join(changed))
        if added:
            failures.append(f"the install cell added packages: {', '.join(added)}")
        kept = ", ".join(after.get(name, f"{name} missing") for name in sorted(pins))
        replaced = "replaced" if after.get(DIST) != before.get(DIST) else "did NOT replace"
        step(f"install cell: {replaced} the older release; {len(before) - 1} preinstalled "
             + ("packages unchanged" if not changed else f"packages, CHANGED: {'; '.join(changed)}")
             + (f"; added {', '.join(added)}" if added else "") + f" (kept {kept})")

        cell = run([str(python), str(ROOT / "tools" / "colab_cell.py"), "show",
                    "--repo-url", f"file://{tmp / 'no-such-repository'}"])
        proc = subprocess.run([str(python), "-c", as_in_colab], cwd=outside, input=cell.stdout,
                              capture_output=True, text=True)  # meant to fail: output not shown
        message = proc.stderr.strip().splitlines()
        if proc.returncode == 0 or not any("RuntimeError: installing the book's code" in line
                                           for line in message):
            failures.append("an install that fails did not stop the cell with a RuntimeError")
        step("install cell from a missing repository: stops with "
             + (next((l for l in message if l.startswith("RuntimeError")), "no RuntimeError")[:90]))

        probe = ("import pathlib, minimal; print(minimal.__version__); "
                 "print(pathlib.Path(minimal.__file__).parent)")
        proc = run([str(python), "-c", probe], cwd=outside)
        got_version, installed = ((proc.stdout.split("\n") + ["", ""])[:2] if proc.returncode == 0
                                  else ("", ""))
        if got_version != version:
            failures.append(f"installed minimal.__version__ is {got_version!r}, not {version!r}")
        expected = {rel.removeprefix("minimal/"): ROOT / rel for rel in working_tree_files()
                    if rel.startswith("minimal/") and rel.endswith(".py")}
        expected.update({f"assets/{p.name}": p for p in (ROOT / "assets").iterdir()
                         if p.suffix in {".txt", ".csv", ".json"}})
        differ = [rel for rel, src in expected.items()
                  if not installed or not (Path(installed) / rel).is_file()
                  or (Path(installed) / rel).read_bytes() != src.read_bytes()]
        if differ:
            failures.append(f"installed code differs from the working tree: {', '.join(differ[:8])}")
        step(f"installed minimal {got_version} at {installed}: "
             + (f"{len(expected)} files equal to the working tree's" if not differ
                else f"{len(differ)} files differ"))

        tests = run([str(python), "-m", "pytest", "-q", "--nbval-current-env", *TESTS, *NOTEBOOKS],
                    cwd=ROOT, quiet=False)
        if tests.returncode != 0:
            failures.append(f"tests failed (pytest exit code {tests.returncode})")
        step("tests and notebooks done")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"floors check {'FAILED' if failures else 'passed'} in {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
