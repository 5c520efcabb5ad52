"""Delta learning in logistic regression (chapter 3, Geng et al. 2025)."""

import pytest

from minimal import delta_learning as dl
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint


def test_pairs_from_weak_teachers_beat_both_and_sft_does_not():
    # Measured (seeds 0-2, shared=0.99): dpo 0.742 +- 0.007, student 0.705,
    # chosen teacher 0.614, rejected 0.580, sft 0.614 +- 0.000.
    res = dl.delta_experiment(seeds=(0, 1, 2))
    for s in range(3):
        assert res["chosen"][s] > res["rejected"][s]
        assert res["dpo"][s] > res["student"][s] + 0.015 > res["chosen"][s]
        assert res["sft"][s] < res["student"][s] - 0.05  # SFT drifts down to the chosen teacher
        assert res["sft"][s] == pytest.approx(res["chosen"][s], abs=0.03)


def test_delta_learning_needs_shared_errors():
    # Measured: with independent teacher errors (shared=0) DPO ends at 0.611 +- 0.003, below the
    # student (0.705).
    res = dl.delta_experiment(seeds=(0, 1, 2), shared=0.0)
    assert max(res["dpo"]) < min(res["student"]) - 0.05


def test_bad_configs_are_named():
    with pytest.raises(ConfigError, match="cos_rejected < cos_chosen < cos_student"):
        dl.DeltaConfig(cos_chosen=0.2, cos_rejected=0.3)
    with pytest.raises(ConfigError, match="objective"):
        dl.DeltaConfig(objective="ppo")


def test_gpu_preset_smoke_runs_on_cpu(tmp_path, capsys):
    argv = ["--preset", "gpu", "--set", "device=cpu", "steps=4", "dim=20", "n_train=500",
            "batch_size=64", f"ckpt_dir={tmp_path}", "ckpt_every=2"]
    dl.main(argv)
    assert "after dpo" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 4
