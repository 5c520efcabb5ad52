"""Algorithm distillation from UCB and entropic activation steering (chapter 6).

Three students are distilled at a reduced budget (400 steps instead of the
preset's 600).  Measured (seeds 0, 1, 2): student/UCB regret 1.03, 1.02,
1.09; SuffFailFreq(H/2) student 0.03, 0.013, 0.0 vs UCB 0.01, 0.027, 0.007 vs
greedy 0.29, 0.26, 0.34; MinFrac student 0.148, 0.144, 0.149 vs UCB 0.149,
0.148, 0.144.  Steering the last block with beta = 0, 4, 16 raised the mean
action entropy from 0.35-0.37 to 0.56-0.66 to 1.07-1.22 nats and MinFrac from
0.14-0.15 to 0.22-0.31.  The controls (200 test bandits): two random unit
directions raised the entropy by 0.72-0.79 times as much as the EAST direction
at beta = 4 and 0.84-0.93 times at beta = 16, so we do not claim the direction
is special at this scale; at the entropy of beta = 16 (interpolated along
T = 1, 3, 5), sampling at a temperature gave a MinFrac 0.007 below to 0.045
above steering's and a regret 1.0-1.8 lower.
"""

import numpy as np
import pytest
import torch

from minimal import algorithm_distillation
from minimal.algorithm_distillation import ADConfig, failure_modes, sample_teacher_batch, train_ad
from minimal.core.config import ConfigError
from minimal.core.train import one_thread as one_thread_
from minimal.dpt import run_agent
from minimal.steering import (
    entropy_steering_vector,
    random_unit_directions,
    steering,
    steering_sweep,
    temperature_sweep,
)
from minimal.worlds.bandits import sample_bandits

SEEDS = (0, 1, 2)
LAYER = 1


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one thread is about as fast as two and immune to busy cores."""
    with one_thread_():
        yield


@pytest.fixture(scope="module")
def students(one_thread):
    return {seed: train_ad(ADConfig.from_preset("laptop", seed=seed, steps=400, progress=False))
            for seed in SEEDS}


def test_teacher_batch_labels_are_the_teachers_actions():
    cfg = ADConfig(batch_size=3, horizon=7)
    actions, rewards, targets = sample_teacher_batch(cfg, torch.Generator().manual_seed(0))
    assert actions.shape == rewards.shape == targets.shape == (3, 7)
    assert (actions[:, :5].sort(1).values == torch.arange(5)).all()  # UCB tries each arm once


def test_the_label_at_position_j_is_not_visible_to_the_model():
    """Position j predicts a_{j+1} from the first j interactions: later ones cannot leak in."""
    from minimal.core.gpt import GPTConfig
    from minimal.dpt import BanditTransformer

    torch.manual_seed(0)
    model = BanditTransformer(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2,
                                        n_embd=16)).eval()
    actions, rewards, _ = sample_teacher_batch(ADConfig(batch_size=3, horizon=7),
                                               torch.Generator().manual_seed(0))
    j = 4
    changed_a, changed_r = actions.clone(), rewards.clone()
    changed_a[:, j:] = (changed_a[:, j:] + 1) % 5
    changed_r[:, j:] += 1.0
    with torch.no_grad():
        before, after = model(actions, rewards), model(changed_a, changed_r)
    assert torch.allclose(before[:, :j + 1], after[:, :j + 1], atol=1e-6)
    assert not torch.allclose(before[:, j + 1:], after[:, j + 1:])


def test_distilled_student_matches_its_teacher_and_avoids_greedys_failures(students):
    for seed, student in students.items():
        m = failure_modes(student, n_runs=300, seed=300 + seed)
        teacher, ad, greedy = m["ucb (teacher)"], m["distilled"], m["greedy"]
        assert ad["regret"] < 1.2 * teacher["regret"], (seed, m)
        assert ad["suffix_fail"] < teacher["suffix_fail"] + 0.04, (seed, m)
        assert ad["suffix_fail"] < 0.3 * greedy["suffix_fail"], (seed, m)
        assert abs(ad["min_frac"] - teacher["min_frac"]) < 0.03, (seed, m)


@pytest.fixture(scope="module")
def east_sweeps(students):
    """Per seed: the unit EAST direction and its sweep over s = 0, 4, 16 on 200 test bandits."""
    out = {}
    for seed, student in students.items():
        H = student.cfg.horizon
        logged = run_agent(student.model, sample_bandits(300, 5, np.random.default_rng(seed)), H,
                           seed=seed)
        u = entropy_steering_vector(student.model, logged, LAYER)
        u = u / u.norm()
        out[seed] = u, steering_sweep(student.model, u, LAYER, [0, 4, 16], H, n_runs=200,
                                      seed=400 + seed)
    return out


def test_steering_raises_entropy_and_exploration_with_its_scale(east_sweeps):
    """Entropy rises with the scale s = 0, 4, 16 and MinFrac with s = 4 on every seed; at
    s = 16, MinFrac rises on the mean over seeds, not on every seed.

    Measured by tests/test_claims_slow.py: the per-seed rise of MinFrac at s = 16 held on 8/10
    seeds 0-9 and 7/10 held-out seeds (on those the push overshoots: entropy still rises, but
    the pulls concentrate again), while MinFrac(4) > MinFrac(0) + 0.01 held on every seed of
    both ranges (smallest rise 0.021).
    """
    frac16 = []
    for seed, (_, sweep) in east_sweeps.items():
        ent, frac = sweep["entropy"], sweep["min_frac"]
        assert ent[0] + 0.1 < ent[1] < ent[2], (seed, sweep)
        assert frac[1] > frac[0] + 0.01, (seed, sweep)
        frac16.append(frac[2] - frac[0])
    assert np.mean(frac16) > 0.02, frac16


def test_random_directions_and_temperature_raise_entropy_too(students, east_sweeps):
    """The controls of the notebook: EAST's direction is not special at this scale."""
    for seed, student in students.items():
        H = student.cfg.horizon
        u, east = east_sweeps[seed]
        rand = [steering_sweep(student.model, v, LAYER, [4, 16], H, n_runs=200, seed=400 + seed)
                for v in random_unit_directions(2, u.numel(), seed=seed)]
        rand_ent = np.mean([r["entropy"] for r in rand], 0)  # at s = 4, 16
        rise_east = np.array(east["entropy"][1:]) - east["entropy"][0]
        rise_rand = rand_ent - east["entropy"][0]
        assert (rise_rand > 0.5 * rise_east).all(), (seed, rise_east, rise_rand)
        temp = temperature_sweep(student.model, [1, 3, 5], H, n_runs=200, seed=400 + seed)
        assert np.all(np.diff(temp["entropy"]) > 0), (seed, temp)
        # at the entropy EAST reaches with s = 16, temperature spreads pulls at least about
        # as evenly and costs no more regret
        e16 = east["entropy"][2]
        frac_t = np.interp(e16, temp["entropy"], temp["min_frac"])
        regret_t = np.interp(e16, temp["entropy"], temp["regret"])
        assert frac_t > east["min_frac"][2] - 0.03, (seed, frac_t, east)
        assert regret_t < east["regret"][2], (seed, regret_t, east)


def test_gpu_preset_smoke_runs_on_cpu_with_bf16_and_checkpoints(tmp_path, capsys):
    from minimal.core.train import load_checkpoint

    overrides = dict(device="cpu", steps=4, warmup_steps=1, batch_size=4, horizon=8, n_layer=1,
                     n_embd=16, log_every=1, ckpt_dir=str(tmp_path), ckpt_every=2, progress=False)
    algorithm_distillation.main(["--preset", "gpu", "--set"]
                                + [f"{k}={v}" for k, v in overrides.items()])
    assert "SuffFailFreq" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 4


def test_bad_inputs_are_named(students):
    with pytest.raises(ConfigError, match="teacher"):
        ADConfig(teacher="oracle")
    model = students[0].model
    with pytest.raises(ValueError, match="layer must be a block index"):
        with steering(model, 5, torch.zeros(64), 1.0):
            pass
    with pytest.raises(ValueError, match="steering vector must have shape"):
        with steering(model, 0, torch.zeros(3), 1.0):
            pass
