"""Chapter 5's toy illustrations: EV arithmetic -> choices, and weight self-reports."""

import numpy as np
import pytest
import torch

from minimal import rational_choice as rc
from minimal.core.config import ConfigError
from minimal.core.train import load_checkpoint

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def laptop_runs():
    cfgs = [rc.ChoiceConfig.from_preset("laptop", seed=s, progress=False) for s in SEEDS]
    return [(rc.ev_demo(c)[0], rc.report_demo(c)) for c in cfgs]


def test_arithmetic_only_network_chooses_by_expected_value(laptop_runs):
    # measured (seeds 0-2): network 0.996-0.998, larger payoff 0.749-0.757
    for ev, _ in laptop_runs:
        assert ev.network > 0.97
        assert ev.network > ev.larger_payoff + 0.15
        assert ev.network > ev.higher_prob + 0.15
        assert ev.value_rmse < 0.01


def test_reported_weights_track_the_hidden_ones(laptop_runs):
    # measured (seeds 0-2): own r 0.965-0.978; crossed r 0.34-0.74
    for _, rep in laptop_runs:
        assert rep.own > 0.93
        assert rep.own > rep.crossed + 0.15


def test_soft_choice_is_a_monotone_psychometric_curve():
    dEV = np.linspace(-0.5, 0.5, 2001)
    p = rc.soft_choice(dEV, tau=0.05)
    assert np.all(np.diff(p) >= 0) and p[1000] == pytest.approx(0.5)
    centres, means = rc.psychometric(dEV, p)
    assert np.all(np.diff(means) > 0) and len(centres) == len(means)


def test_untrained_network_does_not_choose_by_expected_value():
    torch.manual_seed(0)
    scores = rc.score_choices(rc.ValueNet(8), 2000, seed=0)
    assert scores.network < 0.9  # the test above can fail: training is what does it


def test_gpu_preset_smoke_runs_on_cpu_with_bf16_and_checkpoints(tmp_path, capsys):
    overrides = {"device": "cpu", "steps": 10, "warmup_steps": 2, "batch_size": 16,
                 "hidden": 8, "n_eval_pairs": 100, "n_choices": 50, "ckpt_dir": str(tmp_path),
                 "ckpt_every": 5, "progress": False}
    argv = ["--preset", "gpu", "--set"] + [f"{k}={v}" for k, v in overrides.items()]
    rc.main(argv)
    out = capsys.readouterr().out
    assert "choices agree with EV" in out and "reported vs hidden" in out
    assert load_checkpoint(tmp_path / "value_net" / "latest.pt")["step"] == 10
    assert load_checkpoint(tmp_path / "chooser_0" / "latest.pt")["step"] == 10


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="ChoiceConfig.n_attributes = 1"):
        rc.ChoiceConfig(n_attributes=1)
    with pytest.raises(ConfigError, match="ChoiceConfig.beta = 0"):
        rc.ChoiceConfig(beta=0.0)
    with pytest.raises(ValueError, match="last dimension 2"):
        rc.expected_value(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="positive number of gambles"):
        rc.sample_gambles(0, torch.Generator())
    with pytest.raises(ValueError, match="must be a vector"):
        rc.simulate_choices(np.zeros((2, 2)), 10, 1.0, 0)
    with pytest.raises(ValueError, match="tau must be positive"):
        rc.soft_choice(np.zeros(3), tau=0.0)
