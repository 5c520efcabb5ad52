"""Chapter 2's two studies on the scratchpad task (minimal/reasoning_study.py).

* The stored results files under ``assets/results/`` come from their presets: the config in
  each file is the preset's, the GRPO config its runs started from is the one the preset
  builds today, every (seed, recipe) or (seed, strategy) pair is there, and the commit is
  recorded (CI, fast).
* The chapter's claims, asserted on the stored files (CI, fast: the text quotes these files)
  and, by the slow tests, on fresh runs of the presets (about 18 and 14 minutes on 2 cores).
  Both call the same claim functions, so a re-run that no longer supports the text fails.
* The study runner itself: the result does not depend on the number of worker processes, and
  bad input stops before any work.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from minimal.core.config import ConfigError, RunError
from minimal.grpo import RECIPES
from minimal.reasoning_study import (
    STRATEGIES,
    StudyConfig,
    cost_to_reach,
    final_accuracy,
    load_results,
    run_study,
)

FILES = {"ablation": "assets/results/grpo_ablation.json",
         "curriculum": "assets/results/prompt_curriculum.json"}


# ----------------------------------------------------------- the stored files and their presets
@pytest.mark.parametrize("preset", FILES)
def test_stored_results_come_from_their_preset(preset):
    res = load_results(FILES[preset])
    cfg = StudyConfig.from_preset(preset)
    assert res["preset"] == preset
    # every value the study uses is the preset's (StudyConfig.UNUSED lists the others)
    assert {k: res["config"].get(k) for k in cfg.used()} == cfg.used()
    assert res["grpo_config"] == cfg.base(cfg.seed).to_dict(), \
        "the GRPO preset the study starts from changed since the file was written: re-run it"
    assert re.fullmatch(r"[0-9a-f]{40}", res["commit"]) and res["dirty"] is False
    assert res["seconds"] <= 20 * 60, "a named preset must finish within 20 minutes on 2 cores"
    seeds = range(cfg.seed, cfg.seed + cfg.n_seeds)
    if preset == "ablation":
        expected = {(s, n) for s in seeds for n in cfg.recipe_names()}
        got = {(r["seed"], r["recipe"]) for r in res["runs"]}
        assert set(cfg.recipe_names()) == set(RECIPES)
    else:
        expected = {(s, n) for s in seeds for n in cfg.strategy_names()}
        got = {(r["seed"], r["strategy"]) for r in res["runs"]}
        assert set(cfg.strategy_names()) == set(STRATEGIES)
    assert got == expected and len(res["runs"]) == len(expected)
    for run in res["runs"]:  # the presets' eval_every divides steps
        assert run["eval_steps"] == list(range(0, cfg.steps + 1, cfg.eval_every))


# ---------------------------------------------------------------------- the chapter's claims
def _runs(res, name):
    key = "recipe" if res["study"] == "ablation" else "strategy"
    return sorted((r for r in res["runs"] if r[key] == name), key=lambda r: r["seed"])


def _late(run, key, k=3):
    """A logged metric over the last k log points (the last 30 updates)."""
    return float(np.mean(run["trace"][key][-k:]))


def ablation_claims(res: dict) -> dict[str, bool]:
    """The statements of the "Tricks or traps" page about the recipe ablation.

    Measured in the stored file (seeds 0-2, 120 updates): mean gain over recipes and seeds
    +0.037; greedy pass@1 0.897 (warm-up) against 0.768-0.843; Lite PPO - GRPO +0.013,
    +0.002, +0.042; truncation 0.066 at update 10, 0.004-0.019 at the end; overlong filter vs
    GRPO 0.029/0.017/0.012 against 0.004/0.013/0.004; GRPO's pass@16 on levels 1 and 2
    0.98 and 0.98 against 1.00 and 0.99.
    """
    acc = {k: np.array(v) for k, v in final_accuracy(res).items()}
    recipes = [n for n in acc if n != "SFT"]
    gains = np.array([acc[n] - acc["SFT"] for n in recipes])  # (recipes, seeds)
    sft_greedy = np.mean([s["report"]["pass@1"]["0.0"] for s in res["sft"]])
    greedy = {n: np.mean([r["report"]["pass@1"]["0.0"] for r in _runs(res, n)]) for n in recipes}
    first = np.mean([r["trace"]["overlong"][0] for r in res["runs"]])
    trunc = {n: [_late(r, "overlong") for r in _runs(res, n)] for n in recipes}

    def pass16(rows, level):
        return np.mean([r["report"]["pass@k"][str(level)]["16"] for r in rows])

    return {
        "RL raises mean pass@1 at T = 1 (mean gain > 0.02)": gains.mean() > 0.02,
        "every recipe lowers greedy pass@1": all(g < sft_greedy for g in greedy.values()),
        "Lite PPO's mean pass@1 is above GRPO's": acc["Lite PPO"].mean() > acc["GRPO"].mean(),
        "truncation falls below half its update-10 level for every recipe":
            all(np.mean(t) < first / 2 for t in trunc.values()),
        "overlong filtering leaves more truncation than GRPO on every seed":
            all(f > g for f, g in zip(trunc["GRPO + overlong filter"], trunc["GRPO"])),
        "GRPO's pass@16 does not rise on levels 1 and 2":
            all(pass16(_runs(res, "GRPO"), lv) <= pass16(res["sft"], lv) for lv in (1, 2)),
    }


def curriculum_claims(res: dict) -> dict[str, bool]:
    """The statements of the "Prompt curricula" page about the curriculum study.

    Measured in the stored file (seeds 0-2, 120 updates): mean |p - 1/2| of the trained
    prompts, PCL 0.197/0.240/0.192 against uniform 0.250/0.288/0.247; informative share
    0.93/0.84/0.94 against 0.87/0.74/0.83; final pass@1 means uniform 0.554, PCL 0.516,
    rollout filtering 0.604; responses to warm-up + 0.03: uniform 9,216 / never / 4,608,
    PCL 7,680 / never / 12,288, rollout filtering 36,864 / 36,864 / 12,288 (36, 36 and 12
    rollout batches, against uniform's 36, never, 18); value-model correlation 0.46, 0.77,
    0.75.
    """
    acc = {k: np.array(v) for k, v in final_accuracy(res).items()}
    mean = {n: [float(np.mean(r["trace"]["p_dist"])) for r in _runs(res, n)] for n in STRATEGIES}
    inf = {n: [float(np.mean(r["trace"]["informative"])) for r in _runs(res, n)]
           for n in STRATEGIES}
    cost = cost_to_reach(res)
    corr = [np.corrcoef(r["calibration"]["value"], r["calibration"]["measured"])[0, 1]
            for r in _runs(res, "pcl")]
    per_batch = {n: _runs(res, n)[0]["samples_at_eval"][-1]
                 / _runs(res, n)[0]["rollouts_at_eval"][-1] for n in STRATEGIES}
    return {
        "PCL trains on prompts nearer p = 1/2 than uniform sampling, on every seed":
            all(p < u for p, u in zip(mean["pcl"], mean["uniform"])),
        "PCL's groups are informative more often than uniform's, on every seed":
            all(p > u for p, u in zip(inf["pcl"], inf["uniform"])),
        "PCL does not reach the target with fewer responses than uniform on every seed":
            not all(p[0] < u[0] for p, u in zip(cost["pcl"], cost["uniform"])),
        "PCL ends below uniform sampling on the mean": acc["pcl"].mean() < acc["uniform"].mean(),
        "rollout filtering ends highest on the mean":
            acc["rollout_filter"].mean() > max(acc["uniform"].mean(), acc["pcl"].mean()),
        "rollout filtering reaches the target on every seed, in no more rollout batches "
        "than uniform": all(math.isfinite(f[1]) and f[1] <= u[1]
                            for f, u in zip(cost["rollout_filter"], cost["uniform"])),
        "rollout filtering generates k = 4 times the responses per rollout batch":
            per_batch["rollout_filter"] == 4 * per_batch["uniform"] == 4 * per_batch["pcl"],
        "the value model tracks measured success (Pearson > 0.4 on every seed)":
            min(corr) > 0.4,
    }


@pytest.mark.parametrize("preset, claims", [("ablation", ablation_claims),
                                            ("curriculum", curriculum_claims)])
def test_the_stored_results_support_the_chapters_claims(preset, claims):
    failed = [k for k, ok in claims(load_results(FILES[preset])).items() if not ok]
    assert not failed, f"{preset}: {failed}"


@pytest.mark.slow
@pytest.mark.parametrize("preset, claims", [("ablation", ablation_claims),
                                            ("curriculum", curriculum_claims)])
def test_a_fresh_run_of_the_preset_supports_the_chapters_claims(preset, claims, tmp_path):
    res = run_study(StudyConfig.from_preset(preset, out=str(tmp_path / "results.json")))
    failed = [k for k, ok in claims(res).items() if not ok]
    assert not failed, f"{preset}: {failed}"


# --------------------------------------------------------------------------- the runner
TINY = dict(sft_steps=30, steps=4, eval_every=2, eval_size=16, report_size=8, report_samples=4)


def tiny(tmp_path, name, **overrides):
    return StudyConfig(**{**TINY, "out": str(tmp_path / f"{name}.json"), **overrides})


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    one = run_study(tiny(tmp_path, "one", study="curriculum", strategies="uniform,pcl"))
    two = run_study(tiny(tmp_path, "two", study="curriculum", strategies="uniform,pcl",
                         workers=2))
    assert one["runs"] == two["runs"] and one["sft"] == two["sft"]
    assert (tmp_path / "one.json").exists() and not list(tmp_path.glob("*.tmp"))
    assert cost_to_reach(one, gain=0.0)["uniform"] == [(0.0, 0.0)]  # before any sample
    assert cost_to_reach(one, gain=1.01) == {"uniform": [(math.inf, math.inf)],
                                               "pcl": [(math.inf, math.inf)]}
    uniform = next(r for r in one["runs"] if r["strategy"] == "uniform")
    # 32 prompts x 8 samples per rollout batch, each batch used for 2 updates
    assert uniform["samples_at_eval"] == [0, 256, 512]
    assert uniform["rollouts_at_eval"] == [0, 1, 2]


@pytest.mark.unit
def test_bad_study_settings_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"recipes \['GRPO\+\+'\] are not in"):
        StudyConfig(recipes="GRPO++")
    with pytest.raises(ConfigError, match=r"strategies \['greedy'\] are unknown"):
        StudyConfig(strategies="uniform,greedy")
    with pytest.raises(ConfigError, match="must name a .json file"):
        StudyConfig(out="results.txt")
    with pytest.raises(ConfigError, match="eval_every = 20 exceeds steps = 10"):
        StudyConfig(eval_every=20)
    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(RunError, match="cannot write into"):
        StudyConfig(out=str(blocker / "sub" / "r.json")).preflight()
    with pytest.raises(RunError, match="needs a CUDA GPU"):
        if not __import__("torch").cuda.is_available():
            StudyConfig.from_preset("gpu-ablation").preflight()
        else:
            raise RunError("needs a CUDA GPU (skipped: CUDA is here)")
