"""RLHF with PPO and a KL penalty to the reference, on the tiny GPT.

Chapter "Inverse RL for alignment", section "RLHF with PPO, reward
over-optimization, and PPO vs DPO".  The synthetic setting is the one of :mod:`minimal.reward_model`
(prompt ``>``, responses of letters, a gold reward r* in code, Bradley-Terry
pairs sampled from pi_ref).  The pipeline of InstructGPT, in miniature:

1. fit a Bradley-Terry reward model r_phi on ``rm_pairs`` pairs
   (:func:`minimal.reward_model.train_reward_model`, eq. ``bt-loss``);
2. maximise the KL-regularised objective (eq. ``kl-objective``) with PPO.  The
   reward of token t of a response y is eq. ``rlhf-token-reward``:

       r_t = -beta * (log pi_theta(y_t | y_<t) - log pi_ref(y_t | y_<t))
             + [t = L] r_phi(y),

   whose sum over t is r_phi(y) minus beta times a one-sample estimate of
   KL(pi_theta || pi_ref).  Advantages come from GAE (eq. ``gae``,
   :func:`minimal.core.rl.gae`) with a learned per-token critic, and
   the policy takes the clipped surrogate step of eq. ``ppo-clip``.

Every rollout records the mean proxy reward r_phi, the mean gold reward r* and
the KL of the current policy, so one run traces the over-optimization curve
(gold and proxy against KL, eq. ``overoptimization``).  :func:`matched_kl_table`
puts PPO and DPO (:mod:`minimal.dpo`) side by side at equal KL.

The shared loop :func:`minimal.core.train.train` runs the optimizer steps: its
``get_batch`` collects a fresh rollout with the current policy every
``ppo_epochs`` steps and hands the same rollout back in between, so each rollout
gets ``ppo_epochs`` full-batch PPO steps.  ``python -m minimal.rlhf_ppo --preset gpu``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from minimal import dpo
from minimal import reward_model as rm
from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.gpt import GPT, check_heads_divide_width
from minimal.core.rl import clipped_surrogate, gae, kl_k1, whiten
from minimal.core.train import EveryK, History, resolve_device, train
from minimal.worlds import letters
from minimal.worlds.letters import response_token_logprobs


@dataclass
class RLHFConfig(TrainConfig):
    """RLHF: a Bradley-Terry reward model, then PPO with a KL penalty to pi_ref.

    ``gpu`` preset: for RLHF-PPO with a 4-layer GPT, 512 rollouts per batch and a 3000-step
    reward model.  What it delivers on an H100/H200-class GPU (wall time, throughput,
    memory, the metric reached) is not measured yet: ``bash benchmarks/gpu_check.sh``
    measures it.
    """

    beta: float = param(0.02, "beta: weight of the per-token KL penalty (0 = none; "
                           "typical 0.01 to 0.2)", ge=0)
    response_len: int = param(8, "letters per response", ge=3)
    rm_pairs: int = param(2000, "preference pairs the reward model is fitted on", gt=0)
    rm_steps: int = param(200, "optimizer steps of the reward model", gt=0)
    rater_bias: float = param(0.0, "raters' extra utility per letter 'e', which r* ignores "
                              "(0: labels follow the gold reward)")
    n_layer: int = param(1, "transformer blocks (policy, critic and reward model)", gt=0)
    n_head: int = param(2, "attention heads", gt=0)
    n_embd: int = param(32, "embedding width (a multiple of n_head)", gt=0)
    rollout_size: int = param(64, "responses sampled per rollout", gt=1)
    ppo_epochs: int = param(4, "full-batch PPO steps on each rollout", gt=0)
    clip_eps: float = param(0.2, "PPO clip range epsilon (eq. ppo-clip)", gt=0, lt=1)
    vf_coef: float = param(0.5, "weight of the critic's squared error", ge=0)
    gae_lambda: float = param(0.95, "GAE lambda (eq. gae); gamma is 1 inside a response", ge=0, le=1)
    n_eval: int = param(512, "fresh samples scoring the final policy (and r_phi's held-out pairs)",
                        gt=0)
    steps: int = TrainConfig.redefault(
        "steps", 200, doc="optimizer steps (rollouts = steps / ppo_epochs)")
    lr: float = TrainConfig.redefault("lr", 1e-3, doc="peak AdamW learning rate (1e-4 to 1e-2)")
    weight_decay: float = TrainConfig.redefault(
        "weight_decay", 0.0, doc="AdamW weight decay (0 keeps pi_theta = pi_ref at step 0)")
    log_every: int = TrainConfig.redefault(
        "log_every", 4, doc="record metrics every this many steps (one per rollout)")
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "response_len": 32, "rm_pairs": 100_000,
                "rm_steps": 3000, "n_layer": 4, "n_head": 4, "n_embd": 128, "rollout_size": 512,
                "steps": 4000, "n_eval": 4096, "ckpt_dir": "checkpoints/rlhf_ppo"},
    }

    def check(self) -> None:
        super().check()
        check_heads_divide_width(self)
        if self.steps % self.ppo_epochs:
            self.fail(f"steps = {self.steps} is not a multiple of ppo_epochs = {self.ppo_epochs}")
        if self.ckpt_dir is not None and self.ckpt_every % self.ppo_epochs:
            self.fail(f"ckpt_every = {self.ckpt_every} is not a multiple of ppo_epochs = "
                      f"{self.ppo_epochs}: a resumed run must start on a fresh rollout")


class Critic(nn.Module):
    """V(prompt, y_<t) for t = 1..L: a GPT trunk with a scalar head at every position."""

    def __init__(self, body: GPT):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.cfg.n_embd, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        tokens = letters.with_prompt(responses)[:, :-1]  # (B, L): the state before each token
        return self.head(self.body.hidden(tokens)).squeeze(-1).float()  # (B, L)


class ActorCritic(nn.Module):
    """The trained module: the policy pi_theta (a GPT) and its critic, separate weights."""

    def __init__(self, policy: GPT, critic: Critic):
        super().__init__()
        self.policy = policy
        self.critic = critic


@dataclass
class Rollout:
    """One batch of on-policy responses and everything PPO needs about them."""

    responses: torch.Tensor  # (B, L) letters
    logp_old: torch.Tensor  # (B, L) log pi_theta at collection time
    advantages: torch.Tensor  # (B, L) whitened GAE advantages
    returns: torch.Tensor  # (B, L) critic targets
    stats: dict[str, float]  # proxy, gold, kl of this rollout


def token_rewards(kl_t: torch.Tensor, proxy: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. ``rlhf-token-reward``: r_t = -beta kl_t, plus r_phi(y) on the last token; (B, L).

    ``kl_t`` (B, L) is log pi_theta(y_t | y_<t) - log pi_ref(y_t | y_<t) of each sampled
    token (k1), ``proxy`` (B,) the reward model's score of the whole response.
    """
    rewards = -beta * kl_t  # (B, L) the KL penalty, per token
    rewards[:, -1] += proxy  # the reward model scores the finished response
    return rewards


@torch.no_grad()
def collect(model: ActorCritic, reference: GPT, reward: nn.Module, cfg: RLHFConfig,
            gen: torch.Generator) -> Rollout:
    """Sample responses, score them with r_phi, shape eq. ``rlhf-token-reward``, run GAE."""
    model.eval()
    dev = next(model.parameters()).device
    y = letters.sample_responses(model.policy, cfg.rollout_size, cfg.response_len, gen)  # (B, L)
    logp = response_token_logprobs(model.policy, y)  # (B, L)
    logp_ref = response_token_logprobs(reference, y)  # (B, L)
    proxy = reward(y)  # (B,) r_phi(y)
    values = model.critic(y)  # (B, L)
    kl_t = kl_k1(logp, logp_ref)  # (B, L) per-token log-ratio; sums to a KL sample
    rewards = token_rewards(kl_t, proxy, cfg.beta)  # (B, L)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)  # (B, L)
    dones = torch.zeros_like(values)
    dones[:, -1] = 1.0  # the response ends after L tokens
    adv, ret = gae(rewards.T, values.T, next_values.T, dones.T, 1.0, cfg.gae_lambda)  # (L, B)
    adv, ret = adv.T, ret.T  # (B, L)
    adv = whiten(adv)
    stats = {"proxy": float(proxy.mean()), "gold": float(letters.gold_reward(y.cpu()).mean()),
             "kl": float(kl_t.sum(1).mean())}
    model.train()
    return Rollout(y, logp, adv.to(dev), ret.to(dev), stats)


def ppo_step_loss(model: ActorCritic, batch: Rollout, cfg: RLHFConfig):
    """Clipped surrogate (eq. ``ppo-clip``) plus the critic's squared error, on one rollout."""
    logp = response_token_logprobs(model.policy, batch.responses)  # (B, L)
    ratio = (logp - batch.logp_old).exp()  # (B, L) pi_theta / pi_old per token
    pg_loss = clipped_surrogate(ratio, batch.advantages, cfg.clip_eps, cfg.clip_eps).mean()
    value_loss = 0.5 * (model.critic(batch.responses) - batch.returns).pow(2).mean()
    clipfrac = float(((ratio - 1).abs() > cfg.clip_eps).float().mean())
    return pg_loss + cfg.vf_coef * value_loss, {**batch.stats, "clipfrac": clipfrac}


def train_rlhf(cfg: RLHFConfig, reward: nn.Module | None = None) -> dict[str, Any]:
    """Fit r_phi (unless ``reward`` is given), then run PPO; return curves and final scores.

    ``history.metrics`` holds ``proxy``, ``gold`` and ``kl`` of each logged rollout;
    ``before``/``after`` score pi_ref and the final policy on ``n_eval`` fresh samples
    (gold reward, proxy reward, KL), as :func:`minimal.worlds.letters.score_policy` does.
    """
    device = resolve_device(cfg.device)
    reference = letters.make_reference(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.response_len, seed=0)
    rm_result = None
    if reward is None:
        rm_cfg = cfg.stage_config(
            rm.RewardModelConfig, "reward_model",
            shared=("response_len", "rater_bias", "n_layer", "n_head", "n_embd"),
            n_pairs=cfg.rm_pairs, n_test=cfg.n_eval, steps=cfg.rm_steps,
            warmup_steps=min(20, cfg.rm_steps))
        rm_result = rm.train_reward_model(rm_cfg)
        reward = rm_result["model"]
    reward.to(device).eval()
    reference.to(device).eval()
    torch.manual_seed(cfg.seed)
    critic = Critic(copy.deepcopy(reference))
    model = ActorCritic(copy.deepcopy(reference), critic).to(device)

    def new_rollout(gen: torch.Generator) -> Rollout:  # from the current policy
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.dtype == "bfloat16"):
            return collect(model, reference, reward, cfg, gen)

    get_batch = EveryK(new_rollout, cfg.ppo_epochs)  # each rollout gets ppo_epochs steps

    def loss_fn(m: ActorCritic, batch: Rollout):
        return ppo_step_loss(m, batch, cfg)

    before = score(reference, reference, reward, cfg)
    history = train(model, cfg, get_batch, loss_fn, desc=f"PPO beta={cfg.beta:g}", extra=get_batch)
    after = score(model.policy, reference, reward, cfg)
    return {"policy": model.policy, "reward_model": reward, "reward_model_result": rm_result,
            "history": history, "before": before, "after": after}


@torch.no_grad()
def score(policy: GPT, reference: GPT, reward: nn.Module, cfg: RLHFConfig) -> dict[str, float]:
    """Gold reward, KL and the proxy r_phi on the same ``n_eval`` samples
    (:func:`minimal.worlds.letters.score_policy`)."""
    return letters.score_policy(policy, reference, cfg.n_eval, cfg.response_len, seed=99,
                                reward=reward)


# --------------------------------------------------------- over-optimization
def overoptimization_curve(history: History, window: int = 5) -> dict[str, np.ndarray]:
    """Gold, proxy and KL of each logged rollout, smoothed by a running mean of ``window``."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    kernel = np.ones(window) / window
    smooth = lambda xs: np.convolve(np.asarray(xs), kernel, mode="valid")  # noqa: E731
    return {k: smooth(history.metrics[k]) for k in ("kl", "gold", "proxy")}


def overoptimization_summary(history: History, window: int = 5) -> dict[str, float]:
    """Peak gold reward, the KL where it peaks, and gold/proxy at the end of training."""
    c = overoptimization_curve(history, window)
    i = int(np.argmax(c["gold"]))
    return {"peak_gold": float(c["gold"][i]), "kl_at_peak": float(c["kl"][i]),
            "proxy_at_peak": float(c["proxy"][i]), "final_gold": float(c["gold"][-1]),
            "final_proxy": float(c["proxy"][-1]), "final_kl": float(c["kl"][-1])}


def fit_gao_form(curve: dict[str, np.ndarray], gold_at_start: float) -> dict[str, float]:
    """Least-squares fit of eq. ``overoptimization``, R(d) = d (alpha - beta log d), d = sqrt(KL).

    R is the gain in gold reward over ``gold_at_start`` (pi_ref's).  The form is linear in
    (alpha, beta), so one ``lstsq`` solves it.  Returns alpha, beta, the R^2 of the fit and
    the predicted peak d* = exp(alpha / beta - 1).
    """
    d = np.sqrt(np.maximum(curve["kl"], 1e-8))  # (n,)
    gain = curve["gold"] - gold_at_start  # (n,)
    design = np.stack([d, -d * np.log(d)], axis=1)  # (n, 2)
    (alpha, beta), *_ = np.linalg.lstsq(design, gain, rcond=None)
    resid = gain - design @ np.array([alpha, beta])
    r2 = 1.0 - float((resid ** 2).sum() / ((gain - gain.mean()) ** 2).sum())
    return {"alpha": float(alpha), "beta": float(beta), "r2": r2,
            "peak_d": float(np.exp(alpha / beta - 1)) if beta > 0 else float("inf")}


def overoptimization_config(seed: int, **overrides) -> RLHFConfig:
    """The chapter's over-optimization setting: raters who like 'e' (+1.5 each), no KL penalty."""
    return RLHFConfig(seed=seed, **{"rater_bias": 1.5, "beta": 0.0, "steps": 200, **overrides})


# ------------------------------------------------------------ PPO vs DPO
def gold_at_kl(history: History, kl: float, window: int = 5) -> float:
    """Gold reward of a PPO run when its (smoothed, running-max) KL first reaches ``kl``."""
    c = overoptimization_curve(history, window)
    kl_path = np.maximum.accumulate(c["kl"])  # make the x-axis monotone for interpolation
    if kl > kl_path[-1]:
        raise ValueError(f"the PPO run never reached KL = {kl:.2f} nats (max {kl_path[-1]:.2f})")
    return float(np.interp(kl, kl_path, c["gold"]))


def matched_kl_table(seed: int, dpo_betas=(1.0, 0.3), ppo: RLHFConfig | None = None,
                     dpo_overrides: dict | None = None) -> list[dict[str, float]]:
    """DPO at each beta, and PPO (same pairs, r_phi fitted on them) read off at DPO's KL.

    Both methods see the same ``n_pairs`` Bradley-Terry pairs of seed ``seed``: DPO
    directly, PPO through the reward model fitted on them.  Returns one row per beta.
    """
    ppo = (ppo or RLHFConfig(beta=0.02, steps=200)).replace(seed=seed)
    if ppo.rater_bias != 0:
        raise ValueError(f"matched_kl_table needs unbiased raters (rater_bias = 0, got "
                         f"{ppo.rater_bias}): DPO's pairs are labelled by the gold reward")
    ppo_res = train_rlhf(ppo)
    # DPO gets the same pairs (seed, number, response length) and the same network shape
    same = dict(seed=seed, n_pairs=ppo.rm_pairs, response_len=ppo.response_len,
                n_layer=ppo.n_layer, n_head=ppo.n_head, n_embd=ppo.n_embd)
    rows = []
    for beta in dpo_betas:
        d = dpo.train_dpo(dpo.DPOConfig(beta=beta, **{**same, **(dpo_overrides or {})}))
        kl = d["after"]["kl"]
        rows.append({"beta": beta, "kl": kl, "reference_gold": d["before"]["gold_reward"],
                     "dpo_gold": d["after"]["gold_reward"],
                     "ppo_gold": gold_at_kl(ppo_res["history"], kl)})
    return rows


def main(argv: list[str] | None = None) -> None:
    cfg = RLHFConfig.cli(argv, description="RLHF with PPO and a KL penalty on the tiny GPT")
    res = train_rlhf(cfg)
    b, a = res["before"], res["after"]
    print(f"PPO beta={cfg.beta:g}: gold reward {b['gold_reward']:.2f} -> "
          f"{a['gold_reward']:.2f}, "
          f"proxy {b['proxy']:.2f} -> {a['proxy']:.2f}, KL to reference {a['kl']:.2f} nats")


if __name__ == "__main__":
    run_cli(main)
