"""Chapter 4: reward learning under each preference model, and CPL, on random gridworlds.

The claims are measured across three data seeds (each seed draws new MDPs,
new reward functions and new preferences).  Measured with the settings below
(48 MDPs): near-optimal fraction, partial return vs regret,
  10 pairs: 0.25/0.54, 0.33/0.56, 0.31/0.46;   30 pairs: 0.58/0.79, 0.56/0.85, 0.52/0.88;
 100 pairs: 0.71/0.96, 0.75/1.00, 0.83/0.98;  300 pairs: 0.85/1.00, 0.92/1.00, 0.83/0.98.
CPL at 1000 pairs (24 MDPs), mean scaled return: CPL 0.78/0.73/0.77, partial-return
cell reward + VI 0.67/0.74/0.74, regret cell reward + VI 0.95/0.94/0.83.
"""

import numpy as np
import pytest

from minimal import cpl, reward_learning
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint
from minimal.cpl import CPLConfig, compare_with_pipelines
from minimal.reward_learning import RewardLearningConfig, compare_preference_models

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def comparisons():
    return {s: compare_preference_models(RewardLearningConfig.from_preset(
        "laptop", n_mdps=48, sizes="10,30,100,300", data_seed=s)) for s in SEEDS}


def test_regret_model_gives_near_optimal_policies_more_often_at_every_size(comparisons):
    """Regret's near-optimal fraction is above partial return's at every size (10-300 pairs).

    By at least 0.05 up to 100 pairs; at 300 pairs both near the ceiling (regret >= 0.95) and
    the gap can shrink to 0.02 (held-out seed 88917 of tests/test_claims_slow.py: a gap of at
    least 0.05 at every size held on 10/10 development seeds but 9/10 held-out ones), so there
    it is asserted positive.
    """
    for seed, res in comparisons.items():
        gap = res.near_optimal("regret") - res.near_optimal("partial_return")
        assert np.all(gap[:-1] >= 0.05), (seed, gap)  # sizes 10, 30, 100; measured smallest 0.08
        assert gap[-1] > 0, (seed, gap)  # 300 pairs
        assert gap.mean() >= 0.1, (seed, gap)  # measured 0.18 to 0.23 (0.14 to 0.29 held out)


def test_more_preferences_help_both_learners(comparisons):
    for res in comparisons.values():
        for model in ("partial_return", "regret"):
            frac = res.near_optimal(model)
            assert frac[-1] >= frac[0] + 0.3  # 10 pairs -> 300 pairs
        assert res.near_optimal("regret")[-1] >= 0.95


@pytest.fixture(scope="module")
def cpl_results():
    return {s: compare_with_pipelines(CPLConfig.from_preset("laptop", n_pairs=1000, data_seed=s))
            for s in SEEDS}


def test_cpl_matches_the_partial_return_pipeline_of_the_same_flexibility(cpl_results):
    cpl_scores, pr_scores = [], []
    for seed, res in cpl_results.items():
        s = {k: v[0] for k, v in res.summary().items()}
        cpl_score, pr_cell = s["CPL (no reward, no RL)"], s["partial-return cell reward + VI"]
        assert cpl_score >= 0.65, (seed, s)  # far above the random policy (0)
        assert cpl_score >= pr_cell - 0.1, (seed, s)
        cpl_scores.append(cpl_score), pr_scores.append(pr_cell)
    assert np.mean(cpl_scores) >= np.mean(pr_scores) - 0.02  # measured +0.04


def test_cpl_does_not_reach_the_regret_pipelines_here(cpl_results):
    """The negative half of the result, reported in the chapter: planning with the known
    dynamics (and, for the 4-feature learner, knowing the features) is worth a lot of data."""
    for seed, res in cpl_results.items():
        s = {k: v[0] for k, v in res.summary().items()}
        assert s["regret 4-feature reward + VI"] >= 0.98, (seed, s)
        assert s["regret cell reward + VI"] >= s["CPL (no reward, no RL)"] + 0.03, (seed, s)


def test_gpu_presets_smoke_run_on_cpu_with_bf16_and_checkpoints(tmp_path, capsys):
    tiny = ["device=cpu", "n_mdps=2", "steps=4", "warmup_steps=1", f"ckpt_dir={tmp_path}/r",
            "ckpt_every=2"]
    reward_learning.main(["--preset", "gpu", "--set", "sizes=5,10", *tiny])
    assert "near-optimal" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "r" / "regret_n10" / "latest.pt")["step"] == 4
    cpl.main(["--preset", "gpu", "--set", "n_pairs=10", *tiny[:-2], f"ckpt_dir={tmp_path}/c",
              "ckpt_every=2"])
    assert "CPL (no reward, no RL)" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "c" / "latest.pt")["step"] == 4


def test_bad_config_and_input_are_named():
    with pytest.raises(ConfigError, match="sizes = '10,x'"):
        RewardLearningConfig(sizes="10,x")
    with pytest.raises(ConfigError, match="lam = 1.5: must be at most 1"):
        CPLConfig(lam=1.5)
    with pytest.raises(ConfigError, match="unknown preset 'tpu'"):
        CPLConfig.from_preset("tpu")
    with pytest.raises(ValueError, match="unknown preference model"):
        reward_learning.fit_reward([], [], "reward", RewardLearningConfig())
    with pytest.raises(ValueError, match="one dataset per MDP"):
        reward_learning.PreferenceBatch.stack([], [])
