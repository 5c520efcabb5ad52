"""Chapter 2: prompt curriculum learning (minimal.prompt_curriculum)."""

import numpy as np
import pytest
import torch

from minimal import prompt_curriculum as pc
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint
from minimal.prompt_curriculum import PCLConfig, informative_prob, train_pcl, value_calibration
from minimal.sft import train_sft


def test_informative_probability_peaks_at_one_half():
    p = torch.linspace(0, 1, 101)
    for G in (2, 4, 8, 16):
        f = informative_prob(p, G)
        assert p[f.argmax()].item() == pytest.approx(0.5)
        assert f.max().item() == pytest.approx(1 - 2 ** (1 - G), abs=1e-6)
        assert f[0] == 0 and f[-1] == 0


def test_bad_config_is_named():
    with pytest.raises(ConfigError, match="strategy"):
        PCLConfig(strategy="greedy")
    with pytest.raises(ConfigError, match="candidates"):
        PCLConfig(candidates=1)


BUDGET = dict(steps=60, eval_every=30)


@pytest.fixture(scope="module")
def runs():
    """Uniform sampling and PCL from the same warm-up, seeds 0-2, 60 GRPO updates each."""
    out = {}
    for seed in (0, 1, 2):
        cfg = PCLConfig(seed=seed, **BUDGET)
        start = train_sft(cfg.sft_config()).model
        out[seed] = {s: train_pcl(cfg.replace(strategy=s), start) for s in ("uniform", "pcl")}
    return out


def test_pcl_selects_prompts_closer_to_one_half_than_uniform(runs):
    # Mean |p_hat - 1/2| (uniform vs pcl) for seeds 0-2.  The per-seed gap depends on the
    # processor (a chaotic 60-update run), so the claim is the mean gap over the seeds:
    #   AMD EPYC (AVX2):             .273/.252, .232/.205, .291/.253   mean gap .029
    #   Intel Xeon (AVX-512):        .330/.322, .202/.208, .249/.210   mean gap .014
    #   the same, kernels at AVX2:   .227/.199, .233/.226, .230/.207   mean gap .019
    gaps = []
    for seed, r in runs.items():
        uni = np.mean(r["uniform"].grpo.history.metrics["p_dist"])
        pcl = np.mean(r["pcl"].grpo.history.metrics["p_dist"])
        gaps.append(uni - pcl)
        assert pcl < uni + 0.02, (seed, uni, pcl)  # never clearly further from 1/2
        assert r["pcl"].grpo.samples == r["uniform"].grpo.samples  # same generation budget
    assert np.mean(gaps) > 0.005, gaps


def test_pcl_does_not_beat_uniform_at_this_scale(runs):
    # Documents the non-reproduction reported in the chapter: final pass@1 (uniform vs pcl)
    # .296/.308, .438/.436, .314/.290 (mean gain of PCL -0.003; at 100 updates it was
    # behind on every seed).  If this fails, PCL got better here: update the text.
    gains = [r["pcl"].grpo.final_accuracy - r["uniform"].grpo.final_accuracy
             for r in runs.values()]
    assert np.mean(gains) < 0.03, gains


def test_value_model_tracks_measured_success(runs):
    for seed, r in runs.items():
        v, measured = value_calibration(r["pcl"], r["pcl"].grpo.policy, PCLConfig(seed=seed))
        corr = torch.corrcoef(torch.stack([v, measured]))[0, 1].item()
        assert corr > 0.4, (seed, corr)  # measured 0.66, 0.54, 0.49


def test_rollout_filtering_pays_k_times_the_samples_and_gpu_preset_smoke(tmp_path, capsys):
    tiny = dict(device="cpu", sft_steps=4, steps=4, batch_size=4, group_size=2, eval_size=8,
                eval_every=2, log_every=1, warmup_steps=1, pool_size=64, progress=False)
    argv = ["--preset", "gpu", "--set", "strategy=rollout_filter", f"ckpt_dir={tmp_path}",
            "ckpt_every=2", "digits=2"] + [f"{k}={v}" for k, v in tiny.items()]
    res = pc.main(argv)
    assert "rollout_filter" in capsys.readouterr().out
    assert res.grpo.samples == 4 * 4 * 2 * 2  # k * m * G per batch, 2 batches
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 4
