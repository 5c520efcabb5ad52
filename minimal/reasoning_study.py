"""Chapter 2's two studies on the written-scratchpad task, each a named preset with a results file.

The pages "Tricks or traps" and "Prompt curricula" need more runs than a notebook can afford in
a minute: every recipe of :data:`minimal.grpo.RECIPES` on several seeds, and three prompt
curricula on several seeds.  Each study is a preset of :class:`StudyConfig`; it trains one SFT
warm-up per seed (shared by every run of that seed, so the comparison is paired), runs the
jobs in ``workers`` processes, and writes one JSON file: the config, the commit it ran at,
the seconds it took, and every run's curves and final numbers.  The notebooks read and plot
that file; ``tests/test_reasoning_study.py`` checks that the stored config is the preset's,
and its slow tests re-run the presets and assert the chapter's claims across seeds::

    python -m minimal.reasoning_study --preset ablation     # 10 recipes x 3 seeds, < 20 min on 2 cores
    python -m minimal.reasoning_study --preset curriculum   # uniform, PCL, rollout filter x 3 seeds
    python -m minimal.reasoning_study                       # a short smoke run (laptop default)
    python -m minimal.reasoning_study --preset gpu-ablation # the ablation at 5 digits on a GPU

The runs themselves are :func:`minimal.grpo.train_grpo` and
:func:`minimal.prompt_curriculum.train_pcl` on the ``scratchpad`` preset of their configs; this
module only schedules them and records what they measured.  A job's result does not depend
on ``workers``: each job has its own seeds and runs on one thread.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from minimal import asset_path
from minimal.core.config import Config, RunError, param, run_cli
from minimal.grpo import RECIPES, GRPOConfig, decoding_report, task_world, train_grpo
from minimal.prompt_curriculum import PCLConfig, train_pcl, value_calibration
from minimal.sft import train_sft

STRATEGIES = ("uniform", "pcl", "rollout_filter")
#: Training metrics kept per logged step (:class:`minimal.grpo.RolloutBatch` stats and the loss's).
TRACE = ("accuracy", "length", "length_std", "overlong", "sampled_entropy", "clipfrac",
         "informative", "p_dist", "kept_groups")
REPO = Path(__file__).resolve().parent.parent


@dataclass
class StudyConfig(Config):
    """One of chapter 2's studies: its runs, their budget, where the results file goes.

    Presets: ``ablation`` (every recipe of :data:`minimal.grpo.RECIPES`, seeds 0-2, 120
    updates each, written to ``assets/results/grpo_ablation.json``); ``curriculum`` (uniform
    sampling, PCL and rollout filtering, seeds 0-2, written to
    ``assets/results/prompt_curriculum.json``); ``gpu-ablation`` (the ablation on the
    ``gpu-scratchpad`` preset: 5-digit sums, 256 prompts x 16 samples, 1,000 updates; what
    it delivers is not measured yet, and ``benchmarks/gpu_check.sh``, which runs the
    presets named ``gpu``, leaves this study out).
    Each CPU preset is meant to finish within 20 minutes on 2 cores; the file records the
    seconds it took.
    """

    study: str = param("ablation", "'ablation' (recipes) or 'curriculum' (prompt selection)",
                       choices=("ablation", "curriculum"))
    seed: int = param(0, "the first seed: runs use seed .. seed + n_seeds - 1", ge=0)
    n_seeds: int = param(1, "how many seeds, one SFT warm-up each", gt=0)
    recipes: str = param("GRPO,Dr. GRPO", "comma-separated names from minimal.grpo.RECIPES, "
                         "or 'all' (ablation)")
    strategies: str = param(",".join(STRATEGIES), "comma-separated prompt curricula of "
                            "minimal.prompt_curriculum (curriculum)")
    grpo_preset: str = param("scratchpad", "the preset of GRPOConfig / PCLConfig every run "
                             "starts from", choices=("scratchpad", "gpu-scratchpad"))
    sft_steps: int = param(450, "SFT warm-up steps of each seed", gt=0)
    steps: int = param(10, "optimizer updates of each RL run", gt=0)
    eval_every: int = param(5, "held-out pass@1 every this many updates", gt=0)
    eval_size: int = param(400, "held-out problems of each pass@1 evaluation", gt=0)
    report_size: int = param(100, "held-out problems of the final decoding report", gt=0)
    report_samples: int = param(16, "samples per problem for pass@k (k up to this)", ge=2)
    target_gain: float = param(0.03, "gain in held-out pass@1 over the seed's warm-up that the "
                               "curriculum study counts the cost to reach (cost_to_reach)",
                               ge=0, le=1)
    workers: int = param(1, "processes that run the jobs (one thread each)", gt=0, le=64)
    out: str = param("artifacts/reasoning_study.json", "the results file (JSON) to write")
    progress: bool = param(False, "show a progress bar over the jobs")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "ablation": {"n_seeds": 3, "recipes": "all", "steps": 120, "eval_every": 40,
                     "report_size": 200, "workers": 2,
                     "out": "assets/results/grpo_ablation.json"},
        "curriculum": {"study": "curriculum", "n_seeds": 3, "steps": 120, "eval_every": 12,
                       "report_size": 200, "workers": 2,
                       "out": "assets/results/prompt_curriculum.json"},
        "gpu-ablation": {"n_seeds": 3, "recipes": "all", "grpo_preset": "gpu-scratchpad",
                         "steps": 1000, "eval_every": 100, "eval_size": 4000, "sft_steps": 1500,
                         "report_size": 2000, "out": "artifacts/grpo_ablation_gpu.json"},
    }
    cli_defaults: ClassVar[dict[str, Any]] = {"progress": True}

    #: Fields that one study ignores (a change to them leaves its results file valid).
    UNUSED: ClassVar[dict[str, tuple[str, ...]]] = {
        "ablation": ("strategies", "target_gain", "progress"),
        "curriculum": ("recipes", "progress")}

    def used(self) -> dict[str, Any]:
        """The config's values that the study's results depend on."""
        return {k: v for k, v in self.to_dict().items() if k not in self.UNUSED[self.study]}

    def recipe_names(self) -> list[str]:
        return list(RECIPES) if self.recipes == "all" else [n.strip() for n in self.recipes.split(",")]

    def strategy_names(self) -> list[str]:
        return [n.strip() for n in self.strategies.split(",")]

    def check(self) -> None:
        unknown = [n for n in self.recipe_names() if n not in RECIPES]
        if unknown:
            self.fail(f"recipes {unknown} are not in minimal.grpo.RECIPES; choose from "
                      f"{list(RECIPES)} or 'all'")
        unknown = [n for n in self.strategy_names() if n not in STRATEGIES]
        if unknown:
            self.fail(f"strategies {unknown} are unknown; choose from {list(STRATEGIES)}")
        if self.eval_every > self.steps:
            self.fail(f"eval_every = {self.eval_every} exceeds steps = {self.steps}")
        if not self.out.endswith(".json"):
            self.fail(f"out = {self.out!r} must name a .json file")

    def preflight(self, overwrite: bool = False) -> None:
        """The results file's folder must be creatable and writable; a GPU preset needs CUDA."""
        folder = Path(self.out).absolute().parent
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
            raise RunError(f"out = {self.out!r}: cannot write into {existing}; choose another "
                           "path with --set out=...")
        if self.grpo_preset.startswith("gpu") and not torch.cuda.is_available():
            raise RunError(f"grpo_preset = {self.grpo_preset!r} needs a CUDA GPU and none is "
                           "visible; run a CPU preset (ablation, curriculum) instead")

    def base(self, seed: int, cls=GRPOConfig) -> GRPOConfig:
        """The config every run of ``seed`` starts from (no checkpoints: jobs run side by side)."""
        base = cls.from_preset(self.grpo_preset)
        return cls.from_preset(self.grpo_preset, seed=seed, steps=self.steps,
                               sft_steps=self.sft_steps, eval_size=self.eval_size,
                               warmup_steps=min(base.warmup_steps, self.steps),
                               eval_every=self.eval_every, ckpt_dir=None, progress=False)


# ------------------------------------------------------------------------ jobs
def _report(model, cfg: StudyConfig, base: GRPOConfig) -> dict:
    """Greedy pass@1, and pass@k at T = 1 per level from ``report_samples`` samples (pass@1 at
    T = 1 is the run's last held-out evaluation, and pass@k's k = 1)."""
    problems = task_world(base.task).held_out(cfg.report_size, base.digits)
    ks = tuple(k for k in (1, 4, 16, 64) if k <= cfg.report_samples)
    return decoding_report(model, problems, base.digits, temperatures=(0.0,), ks=ks,
                           n=cfg.report_samples, task=base.task)


def _sft_job(cfg: StudyConfig, seed: int) -> dict:
    base = cfg.base(seed)
    res = train_sft(base.sft_config())
    return {"seed": seed, "model": res.model, "accuracy": res.accuracy,
            "greedy_accuracy": res.greedy_accuracy, "report": _report(res.model, cfg, base)}


def _trace(history) -> dict[str, list]:
    return {"step": list(history.steps),
            **{k: list(history.metrics[k]) for k in TRACE if k in history.metrics}}


def _recipe_job(cfg: StudyConfig, seed: int, name: str, start) -> dict:
    run = train_grpo(cfg.base(seed).replace(**RECIPES[name]), start)
    return {"seed": seed, "recipe": name, "eval_steps": run.eval_steps,
            "eval_accuracy": run.eval_accuracy, "samples": run.samples,
            "trace": _trace(run.history), "report": _report(run.policy, cfg, run.config)}


def _strategy_job(cfg: StudyConfig, seed: int, name: str, start) -> dict:
    pcfg = cfg.base(seed, PCLConfig).replace(strategy=name)
    res = train_pcl(pcfg, start)
    run = res.grpo
    out = {"seed": seed, "strategy": name, "eval_steps": run.eval_steps,
           "eval_accuracy": run.eval_accuracy, "samples_at_eval": res.samples_at_eval,
           "rollouts_at_eval": [-(-s // pcfg.updates_per_batch) for s in run.eval_steps],
           "trace": _trace(run.history), "report": _report(run.policy, cfg, pcfg)}
    if name == "pcl":
        # the presets' report_size 200 and report_samples 16 are value_calibration's defaults
        v, measured = value_calibration(res, run.policy, pcfg, n_prompts=cfg.report_size,
                                        n_samples=cfg.report_samples)
        out["calibration"] = {"value": v.tolist(), "measured": measured.tolist()}
    return out


def _init_worker() -> None:
    torch.set_num_threads(1)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _commit() -> tuple[str, bool]:
    """The commit the study runs at, and whether the code (tracked files under ``minimal/``)
    differs from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "minimal"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout
        return sha, bool(dirty.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def preset_of(cfg: StudyConfig) -> str | None:
    """The name of the preset whose values the study uses are ``cfg``'s, or None."""
    for name in StudyConfig.all_presets():
        if StudyConfig.from_preset(name).used() == cfg.used():
            return name
    return None


def run_study(cfg: StudyConfig) -> dict:
    """Run the study and write its results file (atomically, at the end); return the results."""
    started, (commit, dirty) = time.time(), _commit()
    seeds = list(range(cfg.seed, cfg.seed + cfg.n_seeds))
    if cfg.study == "ablation":
        job, names = _recipe_job, cfg.recipe_names()
    else:
        job, names = _strategy_job, cfg.strategy_names()
    n_jobs = len(seeds) * (1 + len(names))
    bar = tqdm(total=n_jobs, desc=f"{cfg.study} study", disable=not cfg.progress)
    pool = None
    if cfg.workers > 1:
        pool = ProcessPoolExecutor(cfg.workers, multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)

    def run_all(fn, arglist):
        if pool is None:
            out = []
            for args in arglist:
                out.append(fn(cfg, *args))
                bar.update(1)
            return out
        futures = [pool.submit(fn, cfg, *args) for args in arglist]
        for f in futures:
            f.add_done_callback(lambda _: bar.update(1))
        return [f.result() for f in futures]

    try:
        sft = run_all(_sft_job, [(s,) for s in seeds])
        start = {s["seed"]: s["model"] for s in sft}
        runs = run_all(job, [(s, n, start[s]) for s in seeds for n in names])
    finally:
        if pool is not None:
            pool.shutdown()
        bar.close()
    results = {"study": cfg.study, "preset": preset_of(cfg), "config": cfg.to_dict(),
               "grpo_config": cfg.base(cfg.seed).to_dict(), "commit": commit, "dirty": dirty,
               "seconds": round(time.time() - started),
               "machine": {"processor": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "torch": torch.__version__},
               "sft": [{k: v for k, v in s.items() if k != "model"} for s in sft], "runs": runs}
    results = _jsonable(results)
    path = Path(cfg.out)  # relative to the working directory, as ckpt_dir is
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return results


# ------------------------------------------------------------------ reading a results file
def load_results(path: str | Path) -> dict:
    """A results file written by :func:`run_study`: an absolute path, or one relative to the
    repository (``assets/...`` is found in an installed package too, as ``minimal/assets``)."""
    path = Path(path)
    if not path.is_absolute():
        shipped = path.parts[:1] == ("assets",)
        path = asset_path(str(Path(*path.parts[1:]))) if shipped else REPO / path
    return json.loads(path.read_text(encoding="utf-8"))


def final_accuracy(results: dict) -> dict[str, list[float]]:
    """``{"SFT": [...], name: [...]}``: held-out pass@1 (T = 1) at the end, one value per seed,
    in seed order (the warm-up's is the first evaluation of each run)."""
    key = "recipe" if results["study"] == "ablation" else "strategy"
    out: dict[str, list[float]] = {"SFT": []}
    seen = set()
    for run in sorted(results["runs"], key=lambda r: r["seed"]):
        if run["seed"] not in seen:
            seen.add(run["seed"])
            out["SFT"].append(run["eval_accuracy"][0])
        out.setdefault(run[key], []).append(run["eval_accuracy"][-1])
    return out


def cost_to_reach(results: dict, gain: float | None = None) -> dict[str, list[tuple[float, float]]]:
    """Curriculum study: per strategy and seed, (generated responses, rollout batches) drawn
    before held-out pass@1 first reaches the seed's warm-up plus ``gain`` (the config's
    ``target_gain`` unless given); ``inf`` when it never does."""
    gain = results["config"]["target_gain"] if gain is None else gain
    out: dict[str, list[tuple[float, float]]] = {}
    for run in sorted(results["runs"], key=lambda r: r["seed"]):
        target = run["eval_accuracy"][0] + gain
        hit = [i for i, a in enumerate(run["eval_accuracy"]) if a >= target - 1e-9]
        cost = ((float(run["samples_at_eval"][hit[0]]), float(run["rollouts_at_eval"][hit[0]]))
                if hit else (math.inf, math.inf))
        out.setdefault(run["strategy"], []).append(cost)
    return out


def main(argv: list[str] | None = None) -> dict:
    cfg = StudyConfig.cli(argv, description="Chapter 2's recipe ablation or curriculum study "
                                            "on the scratchpad task; writes a results file.")
    results = run_study(cfg)
    for name, accs in final_accuracy(results).items():
        print(f"{name:28s} " + " ".join(f"{a:.3f}" for a in accs))
    print(f"wrote {cfg.out} ({results['seconds']} s, commit {results['commit'][:10]}"
          f"{', uncommitted changes' if results['dirty'] else ''})")
    return results


if __name__ == "__main__":
    run_cli(main)
