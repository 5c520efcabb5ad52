"""Prompt curriculum learning (PCL): pick prompts of intermediate difficulty with a value model.

Chapter 2, section "Prompt curricula".  A prompt ``x`` whose success
probability under the current policy is ``p(x)`` yields a useful GRPO group
only if its ``G`` samples disagree, which happens with probability
``1 - p^G - (1 - p)^G`` (eq. ``informative-prob``), largest at ``p = 1/2``.
PCL (Gao et al., 2025) trains a small value model ``V_phi(x) ~ p(x)`` on
policy, from the groups just sampled, and at each step draws ``k * m``
candidate prompts, keeps the ``m`` whose ``V_phi`` is closest to 1/2 and
samples responses only for those (eq. ``pcl-select``); the same samples then fit
``V_phi`` to the measured success rates (eq. ``pcl-value-loss``).  Baselines:

* ``uniform``: ``m`` prompts uniformly from the pool;
* ``rollout_filter``: sample ``G`` responses for all ``k * m`` candidates and
  keep the ``m`` whose *measured* success rate is closest to 1/2; as precise as
  it gets, but ``k`` times the generation cost.

The policy update is GRPO from :mod:`minimal.grpo`; only the choice of prompts
changes.  ::

    python -m minimal.prompt_curriculum                        # PCL, ~20 s
    python -m minimal.prompt_curriculum --set strategy=uniform
    python -m minimal.prompt_curriculum --preset gpu
    python -m minimal.prompt_curriculum --preset scratchpad    # the task chapter 2 compares on

The pool, the value model's one-hot input and the calibration check follow ``task`` (plain
addition or the written scratchpad of :mod:`minimal.worlds.scratchpad`); the comparison of
the three strategies over seeds is the ``curriculum`` preset of
:mod:`minimal.reasoning_study`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from minimal.core.config import param, run_cli
from minimal.core.gpt import GPT
from minimal.grpo import GRPOConfig, GRPOResult, RolloutBatch, Sampler, rollout, task_world, train_grpo
from minimal.worlds.addition import Problems


# ---------------------------------------------------------------------- config
@dataclass
class PCLConfig(GRPOConfig):
    """GRPO whose prompts come from a curriculum: uniform, PCL's value model, or rollout filtering.

    ``gpu`` preset: for the prompt curriculum on 5-digit addition with a pool of 100k
    prompts.  What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the
    metric reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    strategy: str = param("pcl", "'uniform', 'pcl' (value model) or 'rollout_filter'",
                          choices=("uniform", "pcl", "rollout_filter"))
    pool_size: int = param(4000, "training prompts in the pool", gt=0)
    candidates: int = param(4, "k: candidates drawn per kept prompt (2 to 8)", ge=2)
    value_hidden: int = param(64, "hidden units of the value model", gt=0)
    value_lr: float = param(3e-3, "Adam learning rate of the value model", gt=0, le=1)
    value_steps: int = param(1, "value-model gradient steps per rollout batch", gt=0)
    batch_size: int = GRPOConfig.redefault("batch_size", 32, doc="m: prompts per rollout batch")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {**GRPOConfig.presets["gpu"], "pool_size": 100000,
                "batch_size": 256, "ckpt_dir": "checkpoints/pcl"},
        "scratchpad": {**GRPOConfig.presets["scratchpad"]},
        "gpu-scratchpad": {**GRPOConfig.presets["gpu-scratchpad"], "pool_size": 100000,
                           "ckpt_dir": "checkpoints/pcl_scratchpad"},
    }


def informative_prob(p: torch.Tensor, group_size: int) -> torch.Tensor:
    """Eq. ``informative-prob``: chance that ``G`` samples of a prompt with success ``p`` disagree."""
    return 1 - p ** group_size - (1 - p) ** group_size


# ----------------------------------------------------------------- value model
class ValueModel(nn.Module):
    """V_phi(x): an MLP on the one-hot prompt tokens -> success probability in (0, 1)."""

    def __init__(self, prompt_len: int, hidden: int, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.net = nn.Sequential(nn.Linear(prompt_len * vocab_size, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def logits(self, prompts: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(prompts, self.vocab_size).float().flatten(1)  # (N, P * V)
        return self.net(x).squeeze(1)  # (N,)

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(prompts))  # (N,)


# -------------------------------------------------------------------- sampler
class CurriculumSampler(Sampler):
    """The GRPO sampler with a prompt-selection rule; counts every generated response."""

    def __init__(self, policy, reference, cfg: PCLConfig, test: Problems, pool: Problems):
        super().__init__(policy, reference, cfg, test)
        self.pool = pool
        torch.manual_seed(cfg.seed)
        vocab = task_world(cfg.task).TOKENIZER.vocab_size
        self.value = ValueModel(pool.prompts.size(1), cfg.value_hidden, vocab)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=cfg.value_lr)
        self.samples_at_eval: list[int] = []  # responses generated before each evaluation

    def evaluate(self, step: int) -> None:
        self.samples_at_eval.append(self.samples)
        super().evaluate(step)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "samples_at_eval": list(self.samples_at_eval),
                "value": self.value.state_dict(), "value_opt": self.value_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.samples_at_eval = list(state["samples_at_eval"])
        self.value.load_state_dict(state["value"])
        self.value_opt.load_state_dict(state["value_opt"])

    def choose(self, gen: torch.Generator) -> RolloutBatch:
        cfg = self.cfg
        m, k, G = cfg.batch_size, cfg.candidates, cfg.group_size
        if cfg.strategy == "uniform":
            problems = self.pool[torch.randint(len(self.pool), (m,), generator=gen)]
            self.samples += m * G
            return rollout(self.policy, self.reference, problems, cfg, gen)
        cand = self.pool[torch.randint(len(self.pool), (k * m,), generator=gen)]  # (k m,)
        if cfg.strategy == "pcl":
            with torch.no_grad():
                v = self.value(cand.prompts)  # (k m,) predicted success
            keep = torch.argsort((v - 0.5).abs())[:m]  # eq. pcl-select
            self.samples += m * G
            return rollout(self.policy, self.reference, cand[keep], cfg, gen)
        big = rollout(self.policy, self.reference, cand, cfg, gen)  # rollout filtering
        self.samples += k * m * G
        keep = torch.argsort((big.success - 0.5).abs(), stable=True)[:m]
        return big.groups(keep, G)

    def fit_value(self, prompts: torch.Tensor, success: torch.Tensor) -> float:
        """``value_steps`` on-policy steps of V_phi towards measured success rates (eq. pcl-value-loss)."""
        for _ in range(self.cfg.value_steps):
            loss = F.binary_cross_entropy_with_logits(self.value.logits(prompts), success)
            self.value_opt.zero_grad()
            loss.backward()
            self.value_opt.step()
        return loss.item()

    def make_batch(self, gen: torch.Generator) -> RolloutBatch:
        """The chosen prompts' rollouts; then V_phi learns from their measured success."""
        batch = self.choose(gen)
        P = batch.tokens.size(1) - batch.mask.size(1)
        prompts = batch.tokens[:: self.cfg.group_size, :P].cpu()  # (m, P)
        self.fit_value(prompts, batch.success.cpu())
        return batch


@dataclass
class PCLResult:
    grpo: GRPOResult
    samples_at_eval: list[int]  # responses generated before each held-out evaluation
    value: ValueModel


def train_pcl(cfg: PCLConfig, start: GPT | None = None) -> PCLResult:
    """GRPO with the prompt curriculum ``cfg.strategy``; same loop and loss as :mod:`minimal.grpo`."""
    pool = task_world(cfg.task).sample_problems(
        cfg.pool_size, cfg.digits, gen=torch.Generator().manual_seed(10_000 + cfg.seed))
    made = []

    def make_sampler(policy, reference, cfg_, test):
        made.append(CurriculumSampler(policy, reference, cfg_, test, pool))
        return made[0]

    res = train_grpo(cfg, start, make_sampler=make_sampler)
    return PCLResult(res, made[0].samples_at_eval, made[0].value)


@torch.no_grad()
def value_calibration(result: PCLResult, policy: GPT, cfg: PCLConfig, n_prompts: int = 200,
                      n_samples: int = 16, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """V_phi(x) and the measured success rate (``n_samples`` draws) on fresh prompts."""
    w = task_world(cfg.task)
    problems = w.held_out(n_prompts, cfg.digits, seed=seed)
    rep = problems[torch.arange(n_prompts).repeat_interleave(n_samples)]
    gen = torch.Generator().manual_seed(seed)
    ok = w.verify(w.sample(policy, rep.prompts, cfg.digits, gen), rep).view(n_prompts, n_samples)
    return result.value(problems.prompts), ok.mean(1)


def main(argv: list[str] | None = None) -> PCLResult:
    cfg = PCLConfig.cli(argv, description="GRPO with a prompt curriculum (PCL).")
    res = train_pcl(cfg)
    print(f"{cfg.strategy}: held-out pass@1 {res.grpo.start_accuracy:.3f} -> "
          f"{res.grpo.final_accuracy:.3f} with {res.grpo.samples} generated responses")
    return res


if __name__ == "__main__":
    run_cli(main)
