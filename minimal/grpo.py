"""GRPO and its switches for the tiny GPT on addition (chapter 2).

Reinforcement learning from a verifiable reward, read top to bottom: config
and the named recipes, group rollouts, advantages, the clipped loss, the loop,
the ablation helper.  Equation labels refer to chapter 2, sections "GRPO on a
tiny GPT: reinforcement from a verifier" and "Tricks or traps: which GRPO switches
matter?":

* group sampling: ``G`` responses per prompt from the current policy, each
  scored by the verifier (eq. ``verifiable-reward`` in :mod:`minimal.arithmetic`);
* advantages (eq. ``group-advantage``): reward minus the group mean, divided
  by the group's standard deviation (GRPO), by the whole batch's (Lite PPO),
  or by nothing (REINFORCE with a group baseline);
* the clipped surrogate with a KL penalty to the reference (eq. ``grpo-loss``)
  with asymmetric clip range ``[1 - clip_low, 1 + clip_high]`` (clip-higher
  when ``clip_high > clip_low``), aggregated per token or per sequence
  (eq. ``loss-aggregation``), optionally dropping truncated responses
  (overlong filtering).

Each rollout batch is reused for ``updates_per_batch`` optimizer steps, so the
probability ratio moves away from 1 and the clip matters.  The shared loop
:func:`minimal.train.train` does the optimisation: ``get_batch`` samples a
fresh rollout batch every ``updates_per_batch`` steps, ``loss_fn`` is eq.
``grpo-loss``.  The recipes of the Tricks-or-Traps study are configs, not
forks (:data:`RECIPES`)::

    python -m minimal.grpo                                       # GRPO, ~20 s
    python -m minimal.grpo --set adv_norm=batch loss_agg=token   # Lite PPO
    python -m minimal.grpo --preset gpu                          # bigger, bf16
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from minimal.arithmetic import (SFTConfig, Problems, accuracy, held_out, response_mask,
                                reward, sample, sample_problems, train_sft, verify)
from minimal.config import TrainConfig, param, run_cli
from minimal.gpt import GPT
from minimal.train import History, one_thread, resolve_device, train


# ---------------------------------------------------------------------- config
@dataclass
class GRPOConfig(TrainConfig):
    """Critic-free policy optimisation with group advantages, after an SFT warm-up.

    One *step* is one optimizer update.  A rollout batch is ``batch_size``
    prompts x ``group_size`` samples, reused for ``updates_per_batch`` steps.
    """

    digits: int = param(2, "operand width D of the addition task (1 to 6)", ge=1, le=6)
    sft_steps: int = param(450, "SFT warm-up steps when no start model is given", gt=0)
    steps: int = param(300, "optimizer updates of RL", gt=0)
    batch_size: int = param(32, "prompts per rollout batch (16 to 512)", gt=0)
    group_size: int = param(8, "samples per prompt G (4 to 64)", ge=2)
    updates_per_batch: int = param(2, "optimizer updates per rollout batch (1 = on-policy)", gt=0)
    adv_norm: str = param("group", "advantage scale: 'group' std (GRPO), 'batch' std "
                          "(Lite PPO) or 'none' (REINFORCE, group baseline)",
                          choices=("group", "batch", "none"))
    loss_agg: str = param("sequence", "average the loss per 'sequence' then over sequences "
                          "(GRPO) or over all 'token's of the batch (Lite PPO, DAPO)",
                          choices=("sequence", "token"))
    clip_low: float = param(0.2, "ratio clip below 1 - clip_low (0.1 to 0.3)", gt=0, lt=1)
    clip_high: float = param(0.2, "ratio clip above 1 + clip_high; > clip_low is "
                             "clip-higher (0.2 to 0.3)", gt=0)
    kl_coef: float = param(0.0, "weight of the k3 KL penalty to the SFT reference (0 to 0.1)", ge=0)
    overlong_filter: bool = param(False, "drop responses that hit the length limit from the loss")
    temperature: float = param(1.0, "sampling temperature of rollouts", gt=0)
    format_coef: float = param(0.0, "reward for a well-formed answer, right or wrong (0 to 0.2)",
                               ge=0)
    length_coef: float = param(0.0, "reward cost per response token (0 to 0.05)", ge=0)
    eval_every: int = param(50, "held-out accuracy every this many steps", gt=0)
    eval_size: int = param(500, "held-out problems", gt=0)
    lr: float = param(1e-3, "AdamW learning rate, constant (1e-4 to 3e-3)", gt=0, le=1)
    weight_decay: float = param(0.0, "AdamW weight decay (0 for RL)", ge=0, lt=1)
    warmup_steps: int = param(20, "linear warm-up steps", ge=0)
    min_lr_ratio: float = param(1.0, "final LR / lr; 1 keeps it constant", ge=0, le=1)
    log_every: int = TrainConfig.redefault("log_every", 10)
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "laptop": {},
        "gpu": {"device": "cuda", "dtype": "bfloat16", "digits": 5, "sft_steps": 600,
                "steps": 1000, "batch_size": 256, "group_size": 16, "eval_size": 4000,
                "ckpt_dir": "checkpoints/grpo", "ckpt_every": 100, "progress": True},
    }

    def check(self) -> None:
        super().check()
        if self.updates_per_batch > self.steps:
            self.fail(f"updates_per_batch = {self.updates_per_batch} exceeds steps = {self.steps}")
        if self.ckpt_dir and self.ckpt_every % self.updates_per_batch:
            # a checkpoint then falls between rollouts, so no rollout batch needs saving
            self.fail(f"ckpt_every = {self.ckpt_every} is not a multiple of "
                      f"updates_per_batch = {self.updates_per_batch}")

    def sft_config(self) -> SFTConfig:
        """The warm-up run for this config: the SFT gpu preset's bigger model from 5 digits up.

        With checkpoints on, the warm-up checkpoints into ``ckpt_dir/sft`` and resumes with
        the RL run, so a killed run does not redo a finished warm-up.
        """
        big = self.digits >= 5
        return SFTConfig.from_preset("gpu" if big else "laptop", digits=self.digits,
                                     steps=self.sft_steps, seed=self.seed, device=self.device,
                                     dtype=self.dtype, progress=self.progress,
                                     warmup_steps=min(10, self.sft_steps),
                                     **self.stage_checkpoints("sft"))


#: The Tricks-or-Traps recipes as config overrides; all share the vanilla clipped loss.
RECIPES: dict[str, dict[str, Any]] = {
    "GRPO": {"adv_norm": "group", "loss_agg": "sequence"},
    "Lite PPO": {"adv_norm": "batch", "loss_agg": "token"},
    "GRPO + batch std": {"adv_norm": "batch", "loss_agg": "sequence"},
    "GRPO + token-level": {"adv_norm": "group", "loss_agg": "token"},
    "GRPO + clip-higher": {"adv_norm": "group", "loss_agg": "sequence", "clip_high": 0.28},
    "GRPO + overlong filter": {"adv_norm": "group", "loss_agg": "sequence",
                               "overlong_filter": True},
    "REINFORCE (group baseline)": {"adv_norm": "none", "loss_agg": "sequence",
                                   "updates_per_batch": 1},
}


# -------------------------------------------------------------------- advantages
def group_advantages(rewards: torch.Tensor, norm: str, eps: float = 1e-6) -> torch.Tensor:
    """Eq. ``group-advantage`` on rewards of shape (B, G) -> advantages (B, G).

    ``group``: (r - group mean) / group std; ``batch``: (r - group mean) /
    batch std; ``none``: r - group mean.  A group whose samples all got the
    same reward has zero advantage under every choice: it teaches nothing.
    """
    if rewards.dim() != 2 or rewards.size(1) < 2:
        raise ValueError(f"rewards must have shape (prompts, group_size >= 2), "
                         f"got {tuple(rewards.shape)}")
    if norm not in ("group", "batch", "none"):
        raise ValueError(f"unknown advantage normalisation {norm!r}")
    centered = rewards - rewards.mean(1, keepdim=True)  # (B, G) group baseline
    if norm == "group":
        return centered / (rewards.std(1, keepdim=True) + eps)
    if norm == "batch":
        return centered / (rewards.std() + eps)
    return centered


# ---------------------------------------------------------------------- rollouts
@dataclass
class RolloutBatch:
    """Everything the loss needs about ``N = B * G`` sampled responses."""

    tokens: torch.Tensor  # (N, P + L) prompt then response
    mask: torch.Tensor  # (N, L) response tokens that enter the loss
    adv: torch.Tensor  # (N,) advantage of each response, broadcast over its tokens
    logp_old: torch.Tensor  # (N, L) log-probs under the policy that sampled
    logp_ref: torch.Tensor | None  # (N, L) under the frozen reference, if kl_coef > 0
    success: torch.Tensor  # (B,) share of each prompt's G samples that the verifier accepts
    stats: dict[str, float]  # reward, accuracy, length... of this batch

    def groups(self, idx: torch.Tensor, group_size: int) -> "RolloutBatch":
        """The rollouts of the prompts ``idx`` only (used by rollout filtering)."""
        rows = (idx.unsqueeze(1) * group_size + torch.arange(group_size)).view(-1)  # (len(idx) G,)
        dev = self.tokens.device
        pick = lambda t: None if t is None else t[rows.to(dev)]  # noqa: E731
        success = self.success[idx]
        stats = {**self.stats, "informative": ((success > 0) & (success < 1)).float().mean().item(),
                 "p_dist": (success - 0.5).abs().mean().item()}
        return RolloutBatch(pick(self.tokens), pick(self.mask), pick(self.adv),
                            pick(self.logp_old), pick(self.logp_ref), success, stats)


@torch.no_grad()
def rollout(policy: GPT, reference: GPT | None, problems: Problems, cfg: GRPOConfig,
            gen: torch.Generator) -> RolloutBatch:
    """Sample ``group_size`` responses per prompt, score them, compute advantages."""
    B, G = len(problems), cfg.group_size
    rep = problems[torch.arange(B).repeat_interleave(G)]  # each prompt G times, (N,)
    responses = sample(policy, rep.prompts, cfg.digits, gen, cfg.temperature)  # (N, L)
    r = reward(responses, rep, cfg.format_coef, cfg.length_coef)  # (N,)
    adv = group_advantages(r.view(B, G), cfg.adv_norm).view(-1)  # (N,)
    mask, truncated = response_mask(responses)  # (N, L), (N,)
    if cfg.overlong_filter:
        mask = mask & ~truncated.unsqueeze(1)
    device = next(policy.parameters()).device
    tokens = torch.cat([rep.prompts, responses], 1).to(device)  # (N, P + L)
    P = rep.prompts.size(1)
    logp_old = policy.token_logprobs(tokens)[:, P - 1:]  # (N, L)
    logp_ref = reference.token_logprobs(tokens)[:, P - 1:] if reference is not None else None
    correct = verify(responses, rep).view(B, G)
    stats = {"reward": r.mean().item(), "accuracy": correct.mean().item(),
             "length": response_mask(responses)[0].sum(1).float().mean().item(),
             "overlong": truncated.float().mean().item(),
             # share of prompts whose G samples disagree: only these carry gradient
             "informative": (correct.std(1) > 0).float().mean().item(),
             # mean |p_hat(x) - 1/2| over prompts: how far from the most useful difficulty
             "p_dist": (correct.mean(1) - 0.5).abs().mean().item()}
    mask = mask.to(device)
    return RolloutBatch(tokens, mask, adv.to(device), logp_old, logp_ref, correct.mean(1), stats)


# ---------------------------------------------------------------------------- loss
def grpo_loss(policy: GPT, batch: RolloutBatch, cfg: GRPOConfig):
    """Eq. ``grpo-loss`` with the aggregation of eq. ``loss-aggregation``; returns (loss, metrics)."""
    P = batch.tokens.size(1) - batch.mask.size(1)
    logp = policy.token_logprobs(batch.tokens)[:, P - 1:]  # (N, L) log pi_theta(y_t | x, y_<t)
    ratio = torch.exp(logp - batch.logp_old)  # (N, L)
    adv = batch.adv.unsqueeze(1)  # (N, 1)
    clipped = torch.clamp(ratio, 1 - cfg.clip_low, 1 + cfg.clip_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv)  # (N, L) pessimistic surrogate
    if cfg.kl_coef > 0:
        log_r = batch.logp_ref - logp  # (N, L)
        per_token = per_token + cfg.kl_coef * (torch.exp(log_r) - log_r - 1)  # k3 estimator
    m = batch.mask.float()  # (N, L)
    if cfg.loss_agg == "token":
        loss = (per_token * m).sum() / m.sum().clamp(min=1)
    else:
        n_tok = m.sum(1)  # (N,)
        kept = n_tok > 0
        loss = ((per_token * m).sum(1)[kept] / n_tok[kept]).sum() / kept.sum().clamp(min=1)
    with torch.no_grad():
        # a token is clipped when the clip is active for its advantage's sign
        active = (adv > 0) & (ratio > 1 + cfg.clip_high) | (adv < 0) & (ratio < 1 - cfg.clip_low)
        clipfrac = (active.float() * m).sum() / m.sum().clamp(min=1)
        approx_kl = ((batch.logp_old - logp) * m).sum() / m.sum().clamp(min=1)
        entropy = (-batch.logp_old * m).sum() / m.sum().clamp(min=1)  # sampled-token estimate
    return loss, {"clipfrac": clipfrac.item(), "approx_kl": approx_kl.item(),
                  "entropy": entropy.item()}


# ------------------------------------------------------------------------ loop
@dataclass
class GRPOResult:
    policy: GPT
    history: History  # per logged step: loss, clipfrac, approx_kl, entropy, reward, length...
    eval_steps: list[int]  # steps at which held-out accuracy was measured (0 = start)
    eval_accuracy: list[float]  # held-out pass@1 (temperature 1) at those steps
    start_accuracy: float
    final_accuracy: float
    samples: int  # responses generated for training
    config: GRPOConfig = field(repr=False)


class Sampler:
    """``get_batch`` for the shared loop: a new rollout batch every ``updates_per_batch`` steps.

    ``prompts(gen) -> Problems`` chooses the prompts (uniform here; the prompt
    curriculum of :mod:`minimal.prompt_curriculum` plugs in its own).
    """

    def __init__(self, policy: GPT, reference: GPT | None, cfg: GRPOConfig, prompts, test: Problems):
        self.policy, self.reference, self.cfg = policy, reference, cfg
        self.prompts, self.test = prompts, test
        self.step, self.batch, self.samples = 0, None, 0
        self.eval_steps, self.eval_accuracy = [], []

    def evaluate(self) -> None:
        self.eval_steps.append(self.step)
        self.eval_accuracy.append(accuracy(self.policy, self.test, self.cfg.digits, seed=1))

    def state_dict(self) -> dict:
        """What a checkpoint needs to resume: counters and evaluations (checkpoints fall
        between rollouts, so the current batch is never needed)."""
        return {"step": self.step, "samples": self.samples,
                "eval_steps": list(self.eval_steps), "eval_accuracy": list(self.eval_accuracy)}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.samples = int(state["step"]), int(state["samples"])
        self.eval_steps, self.eval_accuracy = list(state["eval_steps"]), list(state["eval_accuracy"])

    def __call__(self, gen: torch.Generator) -> RolloutBatch:
        if self.step % self.cfg.eval_every == 0:
            self.evaluate()
        if self.step % self.cfg.updates_per_batch == 0:
            problems = self.prompts(gen)
            self.batch = rollout(self.policy, self.reference, problems, self.cfg, gen)
            self.samples += len(problems) * self.cfg.group_size
        self.step += 1
        return self.batch


def train_grpo(cfg: GRPOConfig, start: GPT | None = None, make_sampler=Sampler) -> GRPOResult:
    """RL from the verifier's reward, starting from ``start`` (or a fresh SFT warm-up).

    ``start`` is copied, never modified; it is also the KL reference.
    ``make_sampler(policy, reference, cfg, prompts, test)`` builds ``get_batch``;
    the prompt curriculum passes its own.
    """
    if start is None:
        start = train_sft(cfg.sft_config()).model
    policy = copy.deepcopy(start)
    reference = copy.deepcopy(start).eval() if cfg.kl_coef > 0 else None
    if reference is not None:
        reference.requires_grad_(False)
    prompts = lambda gen: sample_problems(cfg.batch_size, cfg.digits, gen=gen)  # noqa: E731
    test = held_out(cfg.eval_size, cfg.digits)
    sampler = make_sampler(policy, reference, cfg, prompts, test)

    def loss_fn(model, batch):
        loss, metrics = grpo_loss(model, batch, cfg)
        return loss, {**metrics, **batch.stats}

    with one_thread():
        device = resolve_device(cfg.device)
        policy.to(device)  # train() would move it too, but the sampler needs it now
        if reference is not None:
            reference.to(device)
        history = train(policy, cfg, sampler, loss_fn, desc="GRPO", extra=sampler)
        sampler.evaluate()  # at step == cfg.steps
    return GRPOResult(policy, history, sampler.eval_steps, sampler.eval_accuracy,
                      sampler.eval_accuracy[0], sampler.eval_accuracy[-1], sampler.samples, cfg)


# -------------------------------------------------------------------- ablation
def ablation(recipes: dict[str, dict[str, Any]] | None = None, seeds=(0, 1, 2),
             base: GRPOConfig | None = None) -> dict[str, list[float]]:
    """Final held-out accuracy of each recipe for each seed, same budget and same SFT start.

    Seed ``s`` trains one SFT model, shared by every recipe of that seed, so
    the comparison is paired.  Returns ``{"SFT": [...], recipe: [...]}``.
    """
    recipes = RECIPES if recipes is None else recipes
    base = GRPOConfig() if base is None else base
    out: dict[str, list[float]] = {"SFT": []}
    for seed in seeds:
        cfg = base.replace(seed=seed)
        start = train_sft(cfg.sft_config()).model
        first = True
        for name, overrides in recipes.items():
            res = train_grpo(cfg.replace(**overrides), start)
            if first:
                out["SFT"].append(res.start_accuracy)
                first = False
            out.setdefault(name, []).append(res.final_accuracy)
    return out


def main(argv: list[str] | None = None) -> GRPOResult:
    cfg = GRPOConfig.cli(argv, description="GRPO (and Lite PPO, REINFORCE) on addition.")
    res = train_grpo(cfg)
    print(f"held-out pass@1: SFT {res.start_accuracy:.3f} -> RL {res.final_accuracy:.3f} "
          f"after {cfg.steps} updates ({res.samples} samples)")
    return res


if __name__ == "__main__":
    run_cli(main)
