"""GRPO and its switches for the tiny GPT on addition (chapter 2).

Reinforcement learning from a verifiable reward, read top to bottom: config and the
named recipes, group rollouts (with their advantages), the clipped loss, the loop, the
ablation helper.  The shared equations come from :mod:`minimal.core.rl`.  Equation labels
refer to chapter 2, sections "GRPO on a tiny GPT: reinforcement from a verifier" and
"Tricks or traps: which GRPO switches matter?":

* group sampling: ``G`` responses per prompt from the current policy, each scored by the
  verifier (eq. ``verifiable-reward`` in :mod:`minimal.worlds.addition`);
* advantages (eq. ``group-advantage``, :func:`minimal.core.rl.group_advantages`): reward
  minus the group mean, divided by the group's standard deviation (GRPO), by the whole
  batch's (Lite PPO), or by nothing (REINFORCE with a group baseline);
* the clipped surrogate (:func:`minimal.core.rl.clipped_surrogate`) with a k3 KL penalty
  to the reference (eq. ``grpo-loss``) and the clip range
  ``[1 - clip_eps_low, 1 + clip_eps_high]`` (clip-higher when
  ``clip_eps_high > clip_eps_low``), aggregated per token or per sequence
  (eq. ``loss-aggregation``), optionally dropping truncated responses (overlong filtering).

Each rollout batch is reused for ``updates_per_batch`` optimizer steps, so the
probability ratio moves away from 1 and the clip matters.  The shared loop
:func:`minimal.core.train.train` does the optimisation: ``get_batch`` samples a
fresh rollout batch every ``updates_per_batch`` steps, ``loss_fn`` is eq.
``grpo-loss``.  The recipes of the Tricks-or-Traps study are configs, not
forks (:data:`RECIPES`)::

    python -m minimal.grpo                                       # GRPO, ~20 s
    python -m minimal.grpo --set adv_norm=batch loss_agg=token   # Lite PPO
    python -m minimal.grpo --preset gpu                          # bigger, bf16
    python -m minimal.grpo --set task=scratchpad digits=3        # the written-scratchpad task

Beyond the Tricks-or-Traps switches, :data:`RECIPES` holds three published recipes, each a
config of switches implemented once: Dr. GRPO (``adv_norm="none"``, ``loss_agg="constant"``:
no standard-deviation scaling and no per-response length normalisation), RLOO
(``adv_norm="rloo"``: eq. ``rloo-advantage``, :func:`minimal.core.rl.leave_one_out_advantages`)
and a DAPO-style recipe (clip-higher, token-level aggregation, overlong filtering and
``dynamic_sampling``, which keeps only groups whose rewards differ, drawing more prompts to
refill the batch).  ``soft_overlong`` adds DAPO's soft overlong punishment
(:func:`minimal.core.rl.soft_overlong_penalty`) to the reward.  ``task`` chooses the world:
``addition`` or ``scratchpad`` (:mod:`minimal.worlds.scratchpad`: tens of tokens per response,
lengths that vary with the level and across samples, a budget that truncates).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar

import torch

from minimal.core import distributed
from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT
from minimal.core.rl import (
    clip_active,
    clipped_surrogate,
    group_advantages,
    kl_k1,
    kl_k3,
    leave_one_out_advantages,
    soft_overlong_penalty,
)
from minimal.core.train import EveryK, History, one_thread, resolve_device, train
from minimal.sft import TASKS, SFTConfig, train_sft, world
from minimal.worlds.addition import (
    TOKENIZER,
    Problems,
    accuracy,
    held_out,
    pass_at_k,
    response_mask,
    reward,
    sample,
    sample_problems,
    verify,
)


# ---------------------------------------------------------------------- config
@dataclass
class GRPOConfig(TrainConfig):
    """Critic-free policy optimisation with group advantages, after an SFT warm-up.

    One *step* is one optimizer update.  A rollout batch is ``batch_size``
    prompts x ``group_size`` samples, reused for ``updates_per_batch`` steps.

    ``gpu`` preset: for GRPO on 5-digit addition, 256 prompts x 16 samples per rollout
    batch.  What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the
    metric reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    ``scratchpad`` preset: chapter 2's written-scratchpad task (3 digits, lr 3e-4, 120
    updates), the base of :mod:`minimal.reasoning_study`; ``gpu-scratchpad``: the same task
    at 5 digits with 256 prompts x 16 samples (not measured yet).
    """

    digits: int = param(2, "operand width d of the addition task (1 to 6)", ge=1, le=6)
    task: str = param("addition", "'addition' (answer only) or 'scratchpad' (written columns, "
                      "then the answer: minimal.worlds.scratchpad)", choices=TASKS)
    sft_steps: int = param(450, "SFT warm-up steps when no start model is given", gt=0)
    steps: int = TrainConfig.redefault("steps", 300, doc="optimizer updates of RL")
    batch_size: int = TrainConfig.redefault(
        "batch_size", 32, doc="prompts per rollout batch (16 to 512)")
    group_size: int = param(8, "samples per prompt G (4 to 64)", ge=2)
    updates_per_batch: int = param(2, "optimizer updates per rollout batch (1 = on-policy)", gt=0)
    adv_norm: str = param("group", "advantage scale: 'group' std (GRPO), 'batch' std "
                          "(Lite PPO), 'none' (REINFORCE, group baseline; Dr. GRPO) or "
                          "'rloo' (leave-one-out baseline, no scale)",
                          choices=("group", "batch", "none", "rloo"))
    loss_agg: str = param("sequence", "average the loss per 'sequence' then over sequences "
                          "(GRPO), over all 'token's of the batch (Lite PPO, DAPO), or sum "
                          "tokens over a 'constant' responses x length limit (Dr. GRPO)",
                          choices=("sequence", "token", "constant"))
    clip_eps_low: float = param(0.2, "ratio clip below 1 - clip_eps_low (0.1 to 0.3)", gt=0, lt=1)
    clip_eps_high: float = param(0.2, "ratio clip above 1 + clip_eps_high; > clip_eps_low is "
                             "clip-higher (0.2 to 0.3)", gt=0)
    beta: float = param(0.0, "weight of the k3 KL penalty to the SFT reference (0 to 0.1)", ge=0)
    overlong_filter: bool = param(False, "drop responses that hit the length limit from the loss")
    soft_overlong: bool = param(False, "DAPO's soft overlong punishment: reward falls from 0 to "
                                "-1 over the last fifth of the length limit (on a tight "
                                "budget it also costs long right answers)")
    dynamic_sampling: bool = param(False, "keep only groups whose rewards differ, drawing more "
                                   "prompts (up to 4 rollouts) to refill the batch (DAPO)")
    temperature: float = param(1.0, "sampling temperature of rollouts", gt=0)
    format_coef: float = param(0.0, "reward for a well-formed answer, right or wrong (0 to 0.2)",
                               ge=0)
    length_coef: float = param(0.0, "reward cost per response token (0 to 0.05)", ge=0)
    eval_every: int = param(50, "held-out accuracy every this many steps", gt=0)
    eval_size: int = param(500, "held-out problems", gt=0)
    lr: float = TrainConfig.redefault(
        "lr", 1e-3, doc="AdamW learning rate, constant (1e-4 to 3e-3)")
    weight_decay: float = TrainConfig.redefault(
        "weight_decay", 0.0, doc="AdamW weight decay (0 for RL)")
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 20, doc="linear warm-up steps")
    min_lr_ratio: float = TrainConfig.redefault(
        "min_lr_ratio", 1.0, doc="final LR / lr; 1 keeps it constant")
    log_every: int = TrainConfig.redefault("log_every", 10)
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "digits": 5, "sft_steps": 600,
                "steps": 1000, "batch_size": 256, "group_size": 16, "eval_size": 4000,
                "ckpt_dir": "checkpoints/grpo", "ckpt_every": 100, "progress": True},
        # chapter 2's written-scratchpad task at the budget of its studies
        # (minimal.reasoning_study): 3-digit sums, responses of 9 to 25 tokens; a lower
        # learning rate than plain addition's, where 1e-3 lowers accuracy from the warm-up
        "scratchpad": {"task": "scratchpad", "digits": 3, "lr": 3e-4, "steps": 120,
                       "eval_size": 400},
        # the same task on a GPU: 5-digit sums (responses up to 39 tokens), the 4-layer
        # warm-up of the SFT gpu preset, 256 prompts x 16 samples; not measured yet
        "gpu-scratchpad": {"device": "cuda", "dtype": "bfloat16", "task": "scratchpad",
                           "digits": 5, "lr": 3e-4, "sft_steps": 1500, "steps": 1000,
                           "batch_size": 256, "group_size": 16, "eval_size": 4000,
                           "ckpt_dir": "checkpoints/grpo_scratchpad", "ckpt_every": 100,
                           "progress": True},
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
        return self.stage_config(SFTConfig, "sft", shared=("digits", "task"),
                                 preset="gpu" if self.digits >= 5 else "laptop",
                                 steps=self.sft_steps, warmup_steps=min(10, self.sft_steps))


#: The recipes as config overrides: the Tricks-or-Traps switches one at a time, then three
#: published recipes.  All share the vanilla clipped loss.
RECIPES: dict[str, dict[str, Any]] = {
    "GRPO": {"adv_norm": "group", "loss_agg": "sequence"},
    "Lite PPO": {"adv_norm": "batch", "loss_agg": "token"},
    "GRPO + batch std": {"adv_norm": "batch", "loss_agg": "sequence"},
    "GRPO + token-level": {"adv_norm": "group", "loss_agg": "token"},
    "GRPO + clip-higher": {"adv_norm": "group", "loss_agg": "sequence", "clip_eps_high": 0.28},
    "GRPO + overlong filter": {"adv_norm": "group", "loss_agg": "sequence",
                               "overlong_filter": True},
    "REINFORCE (group baseline)": {"adv_norm": "none", "loss_agg": "sequence",
                                   "updates_per_batch": 1},
    # Three published recipes, configs of the same switches.  Dr. GRPO (Liu et al., 2025):
    # the group baseline without 1/std, and the token sum over a constant (responses x
    # length limit) instead of each response's own length (eq. constant-aggregation)
    "Dr. GRPO": {"adv_norm": "none", "loss_agg": "constant"},
    # RLOO (Ahmadian et al., 2024): leave-one-out baseline (eq. rloo-advantage), on-policy
    "RLOO": {"adv_norm": "rloo", "loss_agg": "sequence", "updates_per_batch": 1},
    # DAPO-style (Yu et al., 2025): clip-higher, token-level loss, overlong filtering and
    # dynamic sampling of informative groups (eq. dynamic-sampling)
    "DAPO": {"adv_norm": "group", "loss_agg": "token", "clip_eps_high": 0.28,
             "overlong_filter": True, "dynamic_sampling": True},
}

#: Rollouts drawn at most per batch under ``dynamic_sampling`` (the first one included).
DYNAMIC_SAMPLING_ROUNDS = 4
#: Share of the response budget over which ``soft_overlong`` lowers the reward (DAPO: 4k of 20k).
OVERLONG_BUFFER = 0.2


# ---------------------------------------------------------------------- rollouts
@dataclass
class RolloutBatch:
    """Everything the loss needs about ``N = B * G`` sampled responses."""

    tokens: torch.Tensor  # (N, P + L) prompt then response
    mask: torch.Tensor  # (N, L) response tokens that enter the loss
    adv: torch.Tensor  # (N,) advantage of each response, broadcast over its tokens
    logp_old: torch.Tensor  # (N, L) log-probs under the policy that sampled
    logp_ref: torch.Tensor | None  # (N, L) under the frozen reference, if beta > 0
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


def task_world(task: str):
    """The functions of the world ``task``: this module's addition imports, or the scratchpad's."""
    if task == "addition":  # the names imported above (tests may replace them)
        return SimpleNamespace(TOKENIZER=TOKENIZER, sample=sample, reward=reward, verify=verify,
                               response_mask=response_mask, sample_problems=sample_problems,
                               held_out=held_out, accuracy=accuracy, pass_at_k=pass_at_k)
    return world(task)


@torch.no_grad()
def rollout(policy: GPT, reference: GPT | None, problems: Problems, cfg: GRPOConfig,
            gen: torch.Generator) -> RolloutBatch:
    """Sample ``group_size`` responses per prompt, score them, compute advantages."""
    B, G = len(problems), cfg.group_size
    w = task_world(cfg.task)
    rep = problems[torch.arange(B).repeat_interleave(G)]  # each prompt G times, (N,)
    responses = w.sample(policy, rep.prompts, cfg.digits, gen, cfg.temperature)  # (N, L)
    r = w.reward(responses, rep, cfg.format_coef, cfg.length_coef)  # (N,)
    mask, truncated = w.response_mask(responses)  # (N, L), (N,)
    lengths = mask.sum(1)  # (N,) response tokens, the end token included
    if cfg.soft_overlong:
        L = responses.size(1)
        r = r + soft_overlong_penalty(lengths, L, max(1, round(OVERLONG_BUFFER * L)))
    if cfg.adv_norm == "rloo":
        adv = leave_one_out_advantages(r.view(B, G)).view(-1)  # (N,) eq. rloo-advantage
    else:
        adv = group_advantages(r.view(B, G), cfg.adv_norm).view(-1)  # (N,)
    if cfg.overlong_filter:
        mask = mask & ~truncated.unsqueeze(1)
    device = next(policy.parameters()).device
    tokens = torch.cat([rep.prompts, responses], 1).to(device)  # (N, P + L)
    P = rep.prompts.size(1)
    logp_old = policy.token_logprobs(tokens)[:, P - 1:]  # (N, L)
    logp_ref = reference.token_logprobs(tokens)[:, P - 1:] if reference is not None else None
    correct = w.verify(responses, rep).view(B, G)
    stats = {"reward": r.mean().item(), "accuracy": correct.mean().item(),
             "length": w.response_mask(responses)[0].sum(1).float().mean().item(),
             "length_std": lengths.float().std().item(),  # spread over the N responses
             "overlong": truncated.float().mean().item(),
             # share of prompts whose G samples disagree: only these carry gradient
             "informative": (correct.std(1) > 0).float().mean().item(),
             # mean |p_hat(x) - 1/2| over prompts: how far from the most useful difficulty
             "p_dist": (correct.mean(1) - 0.5).abs().mean().item()}
    mask = mask.to(device)
    return RolloutBatch(tokens, mask, adv.to(device), logp_old, logp_ref, correct.mean(1), stats)


# ---------------------------------------------------------------------------- loss
def grpo_loss(policy: GPT, batch: RolloutBatch, cfg: GRPOConfig):
    """Eq. ``grpo-loss`` with the aggregation of eq. ``loss-aggregation`` (or, for
    ``loss_agg="constant"``, eq. ``constant-aggregation``); returns (loss, metrics)."""
    P = batch.tokens.size(1) - batch.mask.size(1)
    logp = policy.token_logprobs(batch.tokens)[:, P - 1:]  # (N, L) log pi_theta(y_t | x, y_<t)
    ratio = torch.exp(logp - batch.logp_old)  # (N, L)
    adv = batch.adv.unsqueeze(1)  # (N, 1)
    per_token = clipped_surrogate(ratio, adv, cfg.clip_eps_low, cfg.clip_eps_high)  # (N, L)
    if cfg.beta > 0:  # k3 estimate of KL(pi_theta || pi_ref), per token
        per_token = per_token + cfg.beta * kl_k3(logp, batch.logp_ref)
    m = batch.mask.float()  # (N, L)
    # mean_count: under torchrun the mean count over the ranks' shares (one process: the count)
    n_tokens = distributed.mean_count(m.sum().clamp(min=1))
    if cfg.loss_agg == "token":
        loss = (per_token * m).sum() / n_tokens
    elif cfg.loss_agg == "constant":  # eq. constant-aggregation (Dr. GRPO): token sum / (N L)
        N, L = m.shape
        loss = (per_token * m).sum() / (distributed.mean_count(m.new_tensor(float(N))) * L)
    else:
        n_tok = m.sum(1)  # (N,)
        kept = n_tok > 0
        loss = (((per_token * m).sum(1)[kept] / n_tok[kept]).sum()
                / distributed.mean_count(kept.sum().clamp(min=1)))
    with torch.no_grad():
        # a token is clipped when the clip is active for its advantage's sign
        active = clip_active(ratio, adv, cfg.clip_eps_low, cfg.clip_eps_high)
        clipfrac = (active.float() * m).sum() / n_tokens
        # k1 of KL(pi_old || pi_theta) per token (``approx_kl`` is always k3 in this book)
        old_approx_kl = (kl_k1(batch.logp_old, logp) * m).sum() / n_tokens
        # -log pi_old of the sampled tokens: a one-sample estimate of the old policy's entropy
        sampled_entropy = (-batch.logp_old * m).sum() / n_tokens
    return loss, {"clipfrac": clipfrac.item(), "old_approx_kl": old_approx_kl.item(),
                  "sampled_entropy": sampled_entropy.item()}


# ------------------------------------------------------------------------ loop
@dataclass
class GRPOResult:
    policy: GPT
    history: History  # per logged step: loss, clipfrac, old_approx_kl, sampled_entropy, reward...
    eval_steps: list[int]  # steps at which held-out accuracy was measured (0 = start)
    eval_accuracy: list[float]  # held-out pass@1 (temperature 1) at those steps
    start_accuracy: float
    final_accuracy: float
    samples: int  # responses generated for training
    config: GRPOConfig = field(repr=False)


class Sampler(EveryK):
    """``get_batch`` for the shared loop: a new rollout batch every ``updates_per_batch`` steps.

    :meth:`make_batch` chooses the prompts and rolls them out (uniform prompts here; the
    prompt curriculum of :mod:`minimal.prompt_curriculum` overrides it).  :meth:`evaluate`
    is the loop's evaluation hook (held-out pass@1).  Both counters and the evaluations
    are checkpointed (``train(..., extra=sampler)``).
    """

    def __init__(self, policy: GPT, reference: GPT | None, cfg: GRPOConfig, test: Problems):
        super().__init__(self.make_batch, cfg.updates_per_batch)
        self.policy, self.reference, self.cfg, self.test = policy, reference, cfg, test
        self.samples, self.eval_steps, self.eval_accuracy = 0, [], []

    def evaluate(self, step: int) -> None:
        self.eval_steps.append(step)
        acc = task_world(self.cfg.task).accuracy
        self.eval_accuracy.append(acc(self.policy, self.test, self.cfg.digits, seed=1))

    def state_dict(self) -> dict:
        """What a checkpoint needs to resume: counters and evaluations (checkpoints fall
        between rollouts, so the current batch is never needed)."""
        return {**super().state_dict(), "samples": self.samples,
                "eval_steps": list(self.eval_steps), "eval_accuracy": list(self.eval_accuracy)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.samples = int(state["samples"])
        self.eval_steps, self.eval_accuracy = list(state["eval_steps"]), list(state["eval_accuracy"])

    def make_batch(self, gen: torch.Generator) -> RolloutBatch:
        """``batch_size`` uniform prompts, ``group_size`` responses each."""
        if self.cfg.dynamic_sampling:
            return self.dynamic_batch(gen)
        draw = task_world(self.cfg.task).sample_problems
        problems = draw(self.cfg.batch_size, self.cfg.digits, gen=gen)
        self.samples += len(problems) * self.cfg.group_size
        return rollout(self.policy, self.reference, problems, self.cfg, gen)

    def dynamic_batch(self, gen: torch.Generator) -> RolloutBatch:
        """Eq. ``dynamic-sampling`` (DAPO): roll out ``batch_size`` fresh prompts at a time and keep
        only the groups whose rewards differ (the others have zero advantage), until
        ``batch_size`` groups are kept or :data:`DYNAMIC_SAMPLING_ROUNDS` rollouts are drawn.

        Every generated response counts in ``samples``.  The batch's stats are those of the
        first rollout (the policy on uniform prompts), plus ``kept_groups``: the share of
        ``batch_size`` filled by informative groups.  With no informative group at all the
        first rollout is returned as it is (its advantages are all zero).
        """
        cfg, draw = self.cfg, task_world(self.cfg.task).sample_problems
        kept: list[RolloutBatch] = []
        n_kept, first = 0, None
        for _ in range(DYNAMIC_SAMPLING_ROUNDS):
            problems = draw(cfg.batch_size, cfg.digits, gen=gen)
            self.samples += len(problems) * cfg.group_size
            batch = rollout(self.policy, self.reference, problems, cfg, gen)
            first = batch if first is None else first
            r = batch.adv.view(-1, cfg.group_size)  # zero rows exactly where rewards are equal
            idx = torch.nonzero(r.abs().amax(1).cpu() > 0).view(-1)[: cfg.batch_size - n_kept]
            if len(idx):
                kept.append(batch.groups(idx, cfg.group_size))
                n_kept += len(idx)
            if n_kept == cfg.batch_size:
                break
        if not kept:
            return RolloutBatch(first.tokens, first.mask, first.adv, first.logp_old,
                                first.logp_ref, first.success, {**first.stats, "kept_groups": 0.0})
        cat = lambda name: None if getattr(kept[0], name) is None else torch.cat(  # noqa: E731
            [getattr(b, name) for b in kept])
        return RolloutBatch(cat("tokens"), cat("mask"), cat("adv"), cat("logp_old"),
                            cat("logp_ref"), cat("success"),
                            {**first.stats, "kept_groups": n_kept / cfg.batch_size})


def train_grpo(cfg: GRPOConfig, start: GPT | None = None, make_sampler=Sampler) -> GRPOResult:
    """RL from the verifier's reward, starting from ``start`` (or a fresh SFT warm-up).

    ``start`` is copied, never modified; it is also the KL reference.
    ``make_sampler(policy, reference, cfg, test)`` builds ``get_batch`` (and the
    evaluation hook); the prompt curriculum passes its own.
    """
    if start is None:
        start = train_sft(cfg.sft_config()).model
    policy = copy.deepcopy(start)
    reference = copy.deepcopy(start).eval() if cfg.beta > 0 else None
    if reference is not None:
        reference.requires_grad_(False)
    test = task_world(cfg.task).held_out(cfg.eval_size, cfg.digits)
    sampler = make_sampler(policy, reference, cfg, test)

    def loss_fn(model, batch):
        loss, metrics = grpo_loss(model, batch, cfg)
        return loss, {**metrics, **batch.stats}

    with one_thread():
        device = resolve_device(cfg.device)
        policy.to(device)  # train() would move it too, but the sampler needs it now
        if reference is not None:
            reference.to(device)
        history = train(policy, cfg, sampler, loss_fn, desc="GRPO", extra=sampler,
                        evaluate=sampler.evaluate, eval_every=cfg.eval_every)
    return GRPOResult(policy, history, sampler.eval_steps, sampler.eval_accuracy,
                      sampler.eval_accuracy[0], sampler.eval_accuracy[-1], sampler.samples, cfg)


# ------------------------------------------------------------------ evaluation
@torch.no_grad()
def decoding_report(model: GPT, problems: Problems, digits: int, temperatures=(1.0, 0.5, 0.0),
                    ks=(1, 8), n: int = 8, seed: int = 0, task: str = "addition") -> dict[str, dict]:
    """Held-out success of one model under several decodings, to compare SFT and RL fairly.

    Returns ``{"pass@1": {T: rate}, "pass@k": {level: {k: rate}}}``.  ``pass@1`` is the
    verifier's mean reward (eq. ``verifiable-reward``) at each sampling temperature ``T``:
    greedy decoding for ``T = 0`` (one answer per problem), otherwise the mean over ``n``
    samples per problem.  ``pass@k`` is :func:`minimal.worlds.addition.pass_at_k` at
    temperature 1 on the problems of each difficulty level, from ``n >= max(ks)`` samples.
    ``task`` names the world the problems come from (``addition`` or ``scratchpad``).
    """
    w = task_world(task)
    rep = problems[torch.arange(len(problems)).repeat_interleave(n)]  # each problem n times
    pass1 = {T: w.accuracy(model, problems if T == 0 else rep, digits, seed=seed, temperature=T)
             for T in temperatures}
    levels = problems.level.unique().tolist()
    by_level = {lv: w.pass_at_k(model, problems[problems.level == lv], digits, ks, n, seed)
                for lv in levels}
    return {"pass@1": pass1, "pass@k": by_level}


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
