"""The urn-mixture trainer: snapshots, determinism, presets, CLI and bad input."""

import numpy as np
import pytest
import torch

from minimal import icl_training
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint
from minimal.hierarchical_bayes import HBFit, bayes_learner, fit_hierarchical, fit_power_law
from minimal.icl_training import ICLConfig, train_icl

TINY = dict(steps=20, eval_every=10, n_eval=8, batch_size=8, warmup_steps=2, n_embd=16,
            seq_len=6, progress=False)


def test_snapshots_have_the_right_shapes_and_are_deterministic():
    a = train_icl(ICLConfig.from_preset("laptop", D=3, **TINY))
    b = train_icl(ICLConfig.from_preset("laptop", D=3, **TINY))
    assert a.steps == [0, 10, 20]
    assert a.probs.shape == (3, 8, 6, 4) and a.M.shape == a.G.shape == (8, 6, 4)
    assert torch.allclose(a.probs.sum(-1), torch.ones(3, 8, 6))
    assert np.array_equal(a.d_M, b.d_M) and np.array_equal(a.d_G, b.d_G)


def test_gpu_preset_smoke_runs_on_cpu_with_bf16_and_checkpoints(tmp_path, capsys):
    overrides = {**TINY, "device": "cpu", "ckpt_dir": str(tmp_path), "ckpt_every": 10,
                 "n_layer": 1, "n_head": 2, "K": 3}
    argv = ["--preset", "gpu", "--set"] + [f"{k}={v}" for k, v in overrides.items()]
    icl_training.main(argv)
    out = capsys.readouterr().out
    assert "KL(M||net)" in out and "closer to" in out
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 20


def test_bad_config_and_inputs_are_named():
    with pytest.raises(ConfigError, match="n_embd = 30 is not divisible by n_head = 4"):
        ICLConfig(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="ICLConfig.D = 0"):
        ICLConfig(D=0)
    with pytest.raises(ConfigError, match="unknown preset 'tpu'"):
        ICLConfig.from_preset("tpu")
    with pytest.raises(ValueError, match="at least one D and one seed"):
        icl_training.run_grid([], [0])
    with pytest.raises(ValueError, match="at least one run"):
        fit_hierarchical([])
    with pytest.raises(ValueError, match="positive x and y"):
        fit_power_law([1, 2], [0, 3])


def test_power_law_fit_and_model_transition_are_exact_on_synthetic_data():
    gamma, c = fit_power_law([1, 2, 4, 8], [3 * d ** 1.5 for d in (1, 2, 4, 8)])
    assert gamma == pytest.approx(1.5) and c == pytest.approx(3.0)
    fit = HBFit(a=0.1, alpha=0.5, b=0.01)
    N = fit.transition(delta_L=0.05, delta_K=9.0)
    assert fit.log_odds(N, 0.05, 9.0) == pytest.approx(0.0, abs=1e-9)
    assert fit.weight(N, 0.05, 9.0) == pytest.approx(0.5)


@pytest.mark.unit
def test_exact_bayes_learner_constants_are_those_of_eq_icl_log_odds():
    ideal = bayes_learner(T=12)
    N, dL, dK = 100.0, 0.05, 9.0
    assert ideal.log_odds(N, dL, dK) == pytest.approx(12 * N * dL - dK * np.log(2))
    assert ideal.transition(dL, dK) == pytest.approx(dK * np.log(2) / (12 * dL))


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    """The snapshots along training are checkpointed with the model (train(..., extra=...))."""
    tiny = {**TINY, "steps": 30}
    straight = icl_training.train_icl(ICLConfig.from_preset("laptop", **tiny))
    cfg = ICLConfig.from_preset("laptop", **tiny, ckpt_dir=str(tmp_path), ckpt_every=10)
    predict = icl_training.predict
    calls = {"n": 0}

    def crash_on_the_third_snapshot(model, x):
        calls["n"] += 1
        if calls["n"] == 3:  # the snapshot at step 20, after the step-20 checkpoint
            raise KeyboardInterrupt
        return predict(model, x)

    with monkeypatch.context() as m:
        m.setattr(icl_training, "predict", crash_on_the_third_snapshot)
        with pytest.raises(KeyboardInterrupt):
            icl_training.train_icl(cfg)
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 20
    resumed = icl_training.train_icl(cfg.replace(resume=True))
    assert resumed.steps == straight.steps == [0, 10, 20, 30]
    assert torch.equal(resumed.probs, straight.probs)
    assert resumed.history.metrics == straight.history.metrics
