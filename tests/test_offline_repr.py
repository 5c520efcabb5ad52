"""Chapter 7 illustration: contrastive features keep the state, an autoencoder the noise."""

import numpy as np
import pytest

from minimal import contrastive_repr
from minimal.contrastive_repr import (
    ContrastiveConfig,
    compare_representations,
    linear_probe_accuracy,
    ring_world,
)
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint


def test_contrastive_features_recover_the_state_and_reconstruction_does_not():
    # measured over seeds 0-2: contrastive 0.97 +- 0.03, autoencoder 0.125 +- 0.007 (chance 0.125)
    acc = compare_representations(seeds=(0, 1, 2))
    assert (acc["contrastive"] > 0.8).all()
    assert (acc["autoencoder"] < 0.25).all()


def test_exogenous_noise_also_fools_the_contrastive_objective():
    # persistent noise is as predictable as the state: measured 0.12 +- 0.01 (chance 0.125)
    acc = compare_representations(seeds=(0, 1, 2), noise_corr=0.95, steps=300)
    assert (acc["contrastive"] < 0.3).all()


def test_ring_world_shapes_and_probe_on_true_state():
    cfg = ContrastiveConfig(n_steps_data=500)
    x, obs = ring_world(cfg)
    assert x.shape == (500,) and obs.shape == (500, cfg.d_signal + cfg.d_noise)
    assert set(np.diff(x) % cfg.n_states) <= {0, 1, cfg.n_states - 1}  # -1, 0 or +1 on the ring
    assert linear_probe_accuracy(np.eye(cfg.n_states)[x], x, cfg.n_states, 400) == 1.0


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="noise_corr"):
        ContrastiveConfig(noise_corr=1.0)
    with pytest.raises(ConfigError, match="method"):
        ContrastiveConfig(method="vae")
    with pytest.raises(ValueError, match="n_train must lie in"):
        linear_probe_accuracy(np.zeros((10, 2)), np.zeros(10, int), 2, 10)


def test_gpu_preset_smoke_runs_on_cpu_with_bf16_and_checkpoints(tmp_path, capsys):
    argv = ["--preset", "gpu", "--set", "device=cpu", "steps=4", "n_steps_data=500",
            "d_noise=8", "n_hidden=16", "batch_size=16", "warmup_steps=1", "progress=false",
            f"ckpt_dir={tmp_path}", "ckpt_every=2"]
    contrastive_repr.main(argv)
    assert "linear-probe accuracy" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 4
