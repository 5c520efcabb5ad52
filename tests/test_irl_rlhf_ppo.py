"""RLHF with PPO on the tiny GPT: over-optimization and PPO vs DPO at matched KL (chapter 3)."""

import pytest

from minimal import rlhf_ppo
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint, one_thread

SEEDS = (0, 1, 2)


def test_biased_proxy_is_over_optimized_gold_peaks_then_falls():
    # Measured (seeds 0-2, raters biased +1.5 per 'e', no KL penalty, 200 steps): gold peaks at
    # 1.30 +- 0.15 (KL 1-4 nats) and ends at -1.87 +- 0.03 (KL 13.4); the proxy rises from
    # 3.37 +- 0.25 at the gold peak to 4.56 +- 0.12 at the end.  Fit of eq. overoptimization:
    # R^2 0.94 +- 0.03, beta_RL 1.63 +- 0.15 > 0.
    with one_thread():
        for seed in SEEDS:
            res = rlhf_ppo.train_rlhf(rlhf_ppo.overoptimization_config(seed))
            s = rlhf_ppo.overoptimization_summary(res["history"])
            assert s["peak_gold"] > res["before"]["gold_reward"] + 1.0
            assert s["final_gold"] < s["peak_gold"] - 2.0
            assert s["final_proxy"] > s["proxy_at_peak"] + 0.4
            assert s["final_kl"] > s["kl_at_peak"] + 5
            fit = rlhf_ppo.fit_gao_form(rlhf_ppo.overoptimization_curve(res["history"]),
                                        res["before"]["gold_reward"])
            assert fit["r2"] > 0.8 and fit["beta"] > 0  # Gao et al.'s form bends down


def test_unbiased_proxy_gold_keeps_rising():
    # Measured (seed 0, unbiased labels, no KL penalty): gold -0.39 -> 6.0 (the maximum).
    with one_thread():
        res = rlhf_ppo.train_rlhf(rlhf_ppo.overoptimization_config(0, rater_bias=0.0))
    s = rlhf_ppo.overoptimization_summary(res["history"])
    assert s["final_gold"] > s["peak_gold"] - 0.2 and s["final_gold"] > 5


def test_ppo_and_dpo_both_raise_gold_and_tie_at_matched_kl():
    # Measured (seeds 0-2, 2,000 pairs, PPO beta 0.02): at DPO's KL (0.9-1.4 nats for
    # beta 1, 2.9-4.4 for beta 0.5) DPO 1.75 +- 0.19 / 3.13 +- 0.21 and PPO 1.61 +- 0.14 /
    # 2.98 +- 0.24, from a reference at -0.39; |DPO - PPO| <= 0.2 in every cell.
    with one_thread():
        for seed in SEEDS:
            for row in rlhf_ppo.matched_kl_table(seed, dpo_betas=(1.0, 0.5)):
                assert row["dpo_gold"] > row["reference_gold"] + 1.5
                assert row["ppo_gold"] > row["reference_gold"] + 1.5
                assert abs(row["dpo_gold"] - row["ppo_gold"]) < 0.5


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="not a multiple of ppo_epochs"):
        rlhf_ppo.RLHFConfig(steps=30, ppo_epochs=4)
    with pytest.raises(ConfigError, match="ckpt_every = 6 is not a multiple of ppo_epochs"):
        rlhf_ppo.RLHFConfig(ckpt_dir="ckpt", ckpt_every=6, ppo_epochs=4)
    with pytest.raises(ConfigError, match="beta"):
        rlhf_ppo.RLHFConfig(beta=-0.1)
    with pytest.raises(ConfigError, match="not divisible by n_head"):
        rlhf_ppo.RLHFConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="window must be"):
        rlhf_ppo.overoptimization_curve(None, window=0)


def test_gpu_preset_smoke_runs_on_cpu(tmp_path, capsys):
    argv = ["--preset", "gpu", "--set", "device=cpu", "steps=4", "ppo_epochs=2", "warmup_steps=1",
            "rm_pairs=32", "rm_steps=3", "rollout_size=8", "n_layer=1", "n_embd=32",
            "response_len=8", "n_eval=16", f"ckpt_dir={tmp_path}", "ckpt_every=2"]
    with one_thread():
        rlhf_ppo.main(argv)  # keeps the preset's dtype=bfloat16
    assert "gold reward" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 4
