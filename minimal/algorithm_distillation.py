"""Algorithm distillation: teach the bandit transformer to imitate UCB in context.

Chapter "In-context decision making", section "Distilling an explorer".
Algorithm distillation (Laskin et al., 2023) trains a sequence model on the
interaction histories an RL algorithm produces, with the algorithm's *next
action* as the label (eq. ``ad-loss``),

    L(theta) = - E_{tau, h ~ Alg} sum_{t=1}^{H} log M_theta(a_t | h_{<t}).

EVOLvE (Nie et al., 2024) does the same with an LLM and UCB trajectories
written as text ("oracle behaviour fine-tuning").  Here the student is the
very network DPT uses (:class:`minimal.dpt.BanditTransformer`); only the
labels differ: the teacher's action instead of the optimal arm.  We then
measure EVOLvE's failure-mode metrics (eqs. ``suffix-failure``, ``min-frac``)
for the student, its teacher and greedy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from minimal.bandit_algorithms import (
    greedy_policy,
    make_thompson,
    make_ucb,
    min_fraction,
    run_policy,
    suffix_failure_frequency,
)
from minimal.core.config import param, run_cli
from minimal.dpt import DPTConfig, TrainedAgent, run_agent, train_sequence_model
from minimal.worlds.bandits import sample_bandits


@dataclass
class ADConfig(DPTConfig):
    """Distil a bandit algorithm's trajectories into the bandit transformer.

    ``laptop``: UCB teacher, horizon 50, 600 steps of 64 fresh teacher
    trajectories, about 20 s on 2 CPU cores; the student matches the
    teacher's next action about 90% of the time.  ``gpu``: horizon 500, 4 layers.

    ``gpu`` preset: for the paper-scale horizon (500) with a 4-layer transformer.  What it
    delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric reached)
    is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    teacher: str = param("ucb", "algorithm whose actions are imitated",
                         choices=("ucb", "thompson"))
    ucb_c: float = param(1.0, "UCB exploration constant c of eq. ucb-index (0.5 to 2)", ge=0)

    # the laptop preset's training settings are this config's defaults
    steps: int = DPTConfig.redefault("steps", 600)

    presets: ClassVar = {  # DPT's presets with fewer laptop steps and their own checkpoints
        "gpu": {**DPTConfig.presets["gpu"], "ckpt_dir": "checkpoints/ad"},
    }

    def teacher_policy(self):
        if self.teacher == "ucb":
            return make_ucb(self.ucb_c, self.noise)
        return make_thompson("gaussian", self.noise)


def sample_teacher_batch(cfg: ADConfig, gen: torch.Generator):
    """Teacher trajectories on fresh bandits; targets are the teacher's actions.

    Returns actions (B, H), rewards (B, H) and targets (B, H): position j of the
    model has seen j interactions and is asked for the teacher's a_{j+1}.
    """
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen))  # numpy seed drawn from the loop's generator
    rng = np.random.default_rng(seed)
    bandit = sample_bandits(cfg.batch_size, cfg.n_arms, rng, "gaussian", cfg.noise)
    traj = run_policy(bandit, cfg.teacher_policy(), cfg.horizon, rng)
    actions = torch.from_numpy(traj.actions)  # (B, H)
    rewards = torch.from_numpy(traj.rewards).float()  # (B, H)
    return actions, rewards, actions.clone()


def train_ad(cfg: ADConfig) -> TrainedAgent:
    """Behaviour cloning of the teacher's in-context algorithm (eq. ``ad-loss``)."""
    return train_sequence_model(cfg, lambda gen: sample_teacher_batch(cfg, gen), "AD")


def failure_modes(student: TrainedAgent, n_runs: int = 300, seed: int = 300,
                  suffix_start: int | None = None) -> dict[str, dict[str, float]]:
    """Regret, SuffFailFreq(t) and MinFrac of the student, its teacher and greedy.

    All three face the same ``n_runs`` test bandits; ``suffix_start`` defaults
    to half the horizon.
    """
    cfg = student.cfg
    H = cfg.horizon
    t = suffix_start or H // 2

    def bandit():
        return sample_bandits(n_runs, cfg.n_arms, np.random.default_rng(seed), "gaussian",
                              cfg.noise)

    trajs = {
        f"{cfg.teacher} (teacher)": run_policy(bandit(), cfg.teacher_policy(), H,
                                               np.random.default_rng([seed, 1])),
        "distilled": run_agent(student.model, bandit(), H, seed=seed),
        "greedy": run_policy(bandit(), greedy_policy, H, np.random.default_rng([seed, 2])),
    }
    return {name: {"regret": float(tr.cumulative_regret()[:, -1].mean()),
                   "suffix_fail": suffix_failure_frequency(tr, t),
                   "min_frac": min_fraction(tr)}
            for name, tr in trajs.items()}


def main(argv: list[str] | None = None) -> None:
    cfg = ADConfig.cli(argv)
    agent = train_ad(cfg)
    print(f"final loss {agent.history.last('loss'):.3f}, "
          f"accuracy {agent.history.last('accuracy'):.3f}")
    runs = 64 if cfg.device == "cpu" else 500
    for name, m in failure_modes(agent, n_runs=runs).items():
        print(f"{name:16s} regret {m['regret']:.2f}  SuffFailFreq {m['suffix_fail']:.3f}  "
              f"MinFrac {m['min_frac']:.3f}")


if __name__ == "__main__":
    run_cli(main)
