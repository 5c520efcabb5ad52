"""REINFORCE with a baseline and PPO for gymnasium environments (chapter 1).

One file, read top to bottom: config, actor-critic network, rollouts,
advantages, the two losses, the loop, evaluation.  Equation labels refer to
chapter 1, section "Policy gradients and PPO":

* the policy gradient theorem, eq. ``pg-theorem``, estimated by REINFORCE with
  a learned baseline, eq. ``reinforce-baseline``: one gradient step per batch
  of rollouts, advantages ``G_t - V(s_t)`` (GAE with lambda = 1);
* generalized advantage estimation, eq. ``gae``, in :func:`gae`;
* PPO's clipped surrogate, eq. ``ppo-clip``, with the value loss, entropy
  bonus and optional KL penalty of eq. ``ppo-total``, in :func:`ppo_loss`;
  several epochs of minibatch steps reuse each batch of rollouts.

The shared loop :func:`minimal.core.train.train` draws a fresh batch for every
optimizer step; policy-gradient methods instead alternate *collect a batch of
rollouts with the current policy* and *take one (REINFORCE) or many (PPO)
optimizer steps on it*, so this module has its own short loop and reuses the
shared optimizer, learning-rate schedule, device choice and checkpoints.  Its
checkpoints also hold the environments' states (:mod:`minimal.core.env_snapshot`), so
``resume=true`` continues a killed run exactly where it stopped.

    python -m minimal.policy_gradient                         # PPO on CartPole-v1, ~5 s
    python -m minimal.policy_gradient --set algo=reinforce    # same budget, REINFORCE
    python -m minimal.policy_gradient --preset gpu            # bigger net, 32 envs, bf16
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from minimal.core import distributed
from minimal.core.config import ConfigError, RunError, TrainConfig, param, run_cli
from minimal.core.env_snapshot import NotSnapshotable, load_vector_env_state, vector_env_state
from minimal.core.rl import clipped_surrogate, gae, kl_k3, whiten
from minimal.core.train import (
    History,
    checkpoint_state,
    load_checkpoint,
    lr_at,
    make_optimizer,
    one_thread,
    resolve_device,
    restore_checkpoint,
    save_checkpoint,
    update,
)


# ---------------------------------------------------------------------- config
@dataclass
class PGConfig(TrainConfig):
    """Policy-gradient trainer: REINFORCE with a baseline or PPO (clip, GAE, entropy, KL).

    One *iteration* collects ``num_envs * num_steps`` environment steps with the
    current policy, then updates: REINFORCE takes one gradient step on the whole
    batch, PPO takes ``epochs * (batch / batch_size)`` minibatch steps.

    ``gpu`` preset: for PPO with 32 environments x 128 steps per rollout and a 256-wide
    network.  What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the
    metric reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    algo: str = param("ppo", "'ppo' (clipped surrogate, GAE) or 'reinforce' (one step per batch)",
                      choices=("ppo", "reinforce"))
    env_id: str = param("CartPole-v1", "gymnasium id of an environment with a discrete action "
                        "space and a flat Box observation")
    steps: int = TrainConfig.redefault(
        "steps", 60, doc="iterations (rollout + update); env steps = steps * num_envs * num_steps")
    num_envs: int = param(8, "parallel environments in the rollout (4 to 64)", gt=0)
    num_steps: int = param(64, "steps per environment per rollout (16 to 2048)", gt=0)
    epochs: int = param(10, "PPO: passes over each rollout batch (3 to 30)", gt=0)
    batch_size: int = TrainConfig.redefault(
        "batch_size", 128, doc="PPO: minibatch size; must divide num_envs * num_steps")
    gamma: float = param(0.99, "discount factor (0.9 to 0.999)", ge=0, lt=1)
    gae_lambda: float = param(0.9, "PPO: GAE lambda, bias-variance knob (0.8 to 1)", ge=0, le=1)
    clip_eps: float = param(0.2, "PPO: clip range epsilon of the probability ratio (0.1 to 0.3)",
                             gt=0, lt=1)
    ent_coef: float = param(0.0, "entropy bonus coefficient (0 to 0.01)", ge=0)
    vf_coef: float = param(0.5, "value-loss coefficient (0.25 to 1)", ge=0)
    beta: float = param(0.0, "KL penalty to the rollout policy (0 disables; 0.01 to 1)", ge=0)
    hidden: int = param(64, "hidden units of the actor and critic MLPs (32 to 256)", gt=0)
    norm_adv: bool = param(True, "standardize advantages within each (mini)batch")
    eval_episodes: int = param(20, "greedy evaluation episodes after training", gt=0)
    lr: float = TrainConfig.redefault("lr", 2.5e-3, doc="peak Adam learning rate (1e-4 to 3e-3)")
    weight_decay: float = TrainConfig.redefault(
        "weight_decay", 0.0, doc="AdamW weight decay on weight matrices (0 for RL)")
    warmup_steps: int = TrainConfig.redefault(
        "warmup_steps", 0, doc="iterations of linear LR warm-up")
    min_lr_ratio: float = TrainConfig.redefault(
        "min_lr_ratio", 0.0, doc="final LR as a fraction of lr (cosine decay)")
    grad_clip: float = TrainConfig.redefault(
        "grad_clip", 0.5, doc="clip the global grad norm (0 disables)")
    log_every: int = TrainConfig.redefault(
        "log_every", 1, doc="record metrics every this many iterations")
    ckpt_every: int = TrainConfig.redefault(
        "ckpt_every", 20, doc="write a checkpoint every this many iterations")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # 30,720 env steps, 5-10 s on a CPU; greedy return 500 on CartPole-v1 for seeds 0-4.
        # Same algorithm at a larger scale, for a CUDA machine; writes checkpoints.
        "gpu": {"device": "cuda", "dtype": "bfloat16", "hidden": 256, "num_envs": 32,
                "num_steps": 128, "batch_size": 1024, "steps": 100,
                "ckpt_dir": "checkpoints/policy_gradient"},
    }

    @property
    def rollout_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def total_env_steps(self) -> int:
        return self.steps * self.rollout_size

    def check(self) -> None:
        super().check()
        if self.algo == "ppo" and self.rollout_size % self.batch_size:
            self.fail(f"batch_size = {self.batch_size} must divide num_envs * num_steps "
                      f"= {self.rollout_size}")
        if self.compile:
            self.fail("compile = True is for the shared loop; PPO on gymnasium has its own "
                      "loop and a model too small to gain from it")


# ------------------------------------------------------------------- network
def layer_init(layer: nn.Linear, std: float) -> nn.Linear:
    """Orthogonal weights, zero bias; a small ``std`` on the policy head starts near-uniform."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """Separate MLPs for the policy logits (actor, pi_theta) and the value V_phi (critic)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        gain = float(np.sqrt(2))
        self.actor = nn.Sequential(layer_init(nn.Linear(obs_dim, hidden), gain), nn.Tanh(),
                                   layer_init(nn.Linear(hidden, hidden), gain), nn.Tanh(),
                                   layer_init(nn.Linear(hidden, n_actions), 0.01))
        self.critic = nn.Sequential(layer_init(nn.Linear(obs_dim, hidden), gain), nn.Tanh(),
                                    layer_init(nn.Linear(hidden, hidden), gain), nn.Tanh(),
                                    layer_init(nn.Linear(hidden, 1), 1.0))

    def dist(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.actor(obs).float(),  # (B, A)
                                               validate_args=False)  # skip costly checks

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).float().squeeze(-1)  # (B,)


# ------------------------------------------------------------------ rollouts
def make_envs(env_id: str, n: int) -> gym.vector.SyncVectorEnv:
    """``n`` copies of ``env_id`` that reset on the same step an episode ends.

    An id that gymnasium does not know, or an environment this module cannot drive, is a
    :class:`ConfigError` naming ``env_id``.
    """
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"env_id = {env_id!r}: unknown gymnasium environment {env_id!r} "
                          f"({exc})") from None
    try:
        envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n)],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    except gym.error.Error as exc:  # e.g. an extra package the environment needs
        raise ConfigError(f"env_id = {env_id!r}: gymnasium cannot make it ({exc})") from None
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        envs.close()
        raise ConfigError(f"env_id = {env_id!r} has action space {envs.single_action_space}; "
                          "this module handles Discrete actions only")
    if len(envs.single_observation_space.shape) != 1:
        envs.close()
        raise ConfigError(f"env_id = {env_id!r} has observation shape "
                          f"{envs.single_observation_space.shape}; this module expects flat "
                          "vectors")
    return envs


@dataclass
class Rollout:
    """One batch of experience, all tensors (T, N) unless noted, T = num_steps, N = num_envs."""

    obs: torch.Tensor        # (T, N, obs_dim)
    actions: torch.Tensor
    logp: torch.Tensor       # log pi_old(a_t | s_t) under the policy that acted
    rewards: torch.Tensor
    values: torch.Tensor     # V(s_t)
    next_values: torch.Tensor  # V(s_{t+1}); the true final state on truncation, 0 on termination
    dones: torch.Tensor      # 1 where the episode ended (terminated or truncated) at step t


class RolloutCollector:
    """Steps the vector env with the current policy and logs every finished episode.

    Its ``state_dict`` (the environments, the current observations, the running
    returns and the episode log) goes into checkpoints, so a resumed run sees the
    same episodes as one that was never interrupted.
    """

    def __init__(self, envs: gym.vector.SyncVectorEnv, seed: int, device: torch.device):
        self.envs, self.device = envs, device
        self.obs = envs.reset(seed=[seed * 1000 + i for i in range(envs.num_envs)])[0]  # (N, obs_dim)
        self.ep_return = np.zeros(envs.num_envs)  # running return of each env's current episode
        self.env_steps = 0  # all envs together
        self.episode_returns: list[float] = []  # every finished episode, in order
        self.episode_end_steps: list[int] = []  # env_steps when each ended
        self.episode_end_seconds: list[float] = []  # wall time when each ended (benchmarks only)
        self.clock0 = time.perf_counter()

    @torch.no_grad()
    def collect(self, agent: ActorCritic, num_steps: int, gen: torch.Generator) -> Rollout:
        dev, N = self.device, self.envs.num_envs
        obs_buf, final_buf, act_buf, logp_buf, rew_buf, term_buf, done_buf = ([] for _ in range(7))
        for _ in range(num_steps):
            obs = torch.as_tensor(self.obs, dtype=torch.float32, device=dev)  # (N, obs_dim)
            dist = agent.dist(obs)
            u = torch.rand(N, 1, generator=gen).to(dev)  # inverse-CDF sampling, seeded by gen
            action = (dist.probs.cumsum(-1) < u).sum(-1).clamp_max(dist.probs.shape[-1] - 1)  # (N,)
            next_obs, reward, term, trunc, info = self.envs.step(action.cpu().numpy())
            # s_{t+1} for bootstrapping: where an episode just ended, the env has already reset,
            # so the true final observation comes from info (it matters on truncation).
            final = next_obs.copy()
            if "final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final[i] = info["final_obs"][i]
            self.ep_return += reward
            done = term | trunc
            self.env_steps += N  # all N envs step together
            self.episode_returns += [float(r) for r in self.ep_return[done]]
            self.episode_end_steps += [self.env_steps] * int(done.sum())
            self.episode_end_seconds += [time.perf_counter() - self.clock0] * int(done.sum())
            self.ep_return[done] = 0.0
            obs_buf.append(obs), act_buf.append(action), logp_buf.append(dist.log_prob(action))
            final_buf.append(final), rew_buf.append(reward), term_buf.append(term)
            done_buf.append(done)
            self.obs = next_obs
        as_t = lambda xs: torch.as_tensor(np.stack(xs), dtype=torch.float32, device=dev)  # noqa
        obs = torch.stack(obs_buf)  # (T, N, obs_dim)
        # The critic runs once on the whole batch rather than once per step.
        values = agent.value(obs.flatten(0, 1)).view(num_steps, N)  # (T, N)
        next_values = agent.value(as_t(final_buf).flatten(0, 1)).view(num_steps, N)
        next_values = next_values * (1.0 - as_t(term_buf))  # no future after termination
        return Rollout(obs, torch.stack(act_buf), torch.stack(logp_buf), as_t(rew_buf), values,
                       next_values, as_t(done_buf))

    def state_dict(self) -> dict:
        try:
            envs, why_not = vector_env_state(self.envs), None
        except NotSnapshotable as exc:  # the run goes on; only resuming it will be refused
            envs, why_not = None, str(exc)
        return {"envs": envs, "why_not": why_not, "obs": torch.from_numpy(self.obs.copy()),
                "ep_return": torch.from_numpy(self.ep_return.copy()),
                "env_steps": self.env_steps, "episode_returns": list(self.episode_returns),
                "episode_end_steps": list(self.episode_end_steps),
                "episode_end_seconds": list(self.episode_end_seconds),
                "seconds": time.perf_counter() - self.clock0}

    def load_state_dict(self, state: dict) -> None:
        if state["envs"] is None:
            raise RunError(f"cannot resume: the checkpoint has no environment states "
                           f"({state['why_not']}); rerun without resume in a new ckpt_dir")
        load_vector_env_state(self.envs, state["envs"])
        self.obs, self.ep_return = state["obs"].numpy().copy(), state["ep_return"].numpy().copy()
        self.env_steps = state["env_steps"]
        self.episode_returns = list(state["episode_returns"])
        self.episode_end_steps = list(state["episode_end_steps"])
        self.episode_end_seconds = list(state["episode_end_seconds"])
        self.clock0 = time.perf_counter() - state["seconds"]


# --------------------------------------------------------------------- losses
def ppo_loss(agent: ActorCritic, obs, actions, logp_old, adv, returns, cfg: PGConfig):
    """PPO's total loss (eqs. ``ppo-clip`` and ``ppo-total``) on a minibatch; inputs (B, ...).

    REINFORCE is the same function with no clipping: with a single gradient step on fresh
    data, ratio = 1 and grad(ratio * adv) = grad(log pi) * adv, eq. ``reinforce-baseline``.
    """
    dist = agent.dist(obs)
    logp = dist.log_prob(actions)  # (B,)
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()  # pi_theta(a|s) / pi_old(a|s)
    if cfg.norm_adv and len(adv) > 1:
        adv = whiten(adv)
    if cfg.algo == "ppo":
        pg_loss = clipped_surrogate(ratio, adv, cfg.clip_eps, cfg.clip_eps).mean()
    else:
        pg_loss = -(ratio * adv).mean()
    value_loss = 0.5 * (agent.value(obs) - returns).pow(2).mean()
    entropy = dist.entropy().mean()
    approx_kl = kl_k3(logp_old, logp).mean()  # k3 estimator of KL(pi_old || pi_theta), >= 0
    loss = pg_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy + cfg.beta * approx_kl
    clipfrac = ((ratio - 1).abs() > cfg.clip_eps).float().mean()
    metrics = {"pg_loss": pg_loss.item(), "value_loss": value_loss.item(),
               "entropy": entropy.item(), "approx_kl": approx_kl.item(),
               "clipfrac": clipfrac.item()}
    return loss, metrics


# ----------------------------------------------------------------------- loop
@dataclass
class PGResult:
    agent: ActorCritic
    history: History          # per iteration: env_steps, episode_return (mean of finished), ...
    eval_return: float        # mean greedy return over cfg.eval_episodes
    eval_returns: list[float]
    episode_returns: list[float] = field(default_factory=list)  # every training episode, in order
    episode_end_steps: list[int] = field(default_factory=list)  # env steps (all envs) when each ended
    episode_end_seconds: list[float] = field(default_factory=list)  # wall time (benchmarks only)


def train_pg(cfg: PGConfig, desc: str | None = None) -> PGResult:
    """Train with ``cfg.algo`` on ``cfg.env_id``; evaluate the greedy policy at the end.

    Runs torch on one CPU thread: the tensors here are tiny (a few hundred rows), and
    intra-op threads cost far more in synchronization than they save (over 20x on a
    busy machine, ``benchmarks/profile.md``).  The caller's thread count is restored afterwards.
    """
    distributed.refuse("PPO on gymnasium (minimal.policy_gradient)")
    with one_thread():
        return _train_pg(cfg, desc)




def _train_pg(cfg: PGConfig, desc: str | None) -> PGResult:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)  # action sampling and minibatch order
    envs = make_envs(cfg.env_id, cfg.num_envs)
    obs_dim = envs.single_observation_space.shape[0]
    agent = ActorCritic(obs_dim, int(envs.single_action_space.n), cfg.hidden).to(device)
    opt = make_optimizer(agent, cfg)
    for group in opt.param_groups:
        group["foreach"] = True  # one fused update per group: faster for many small tensors
    collector = RolloutCollector(envs, cfg.seed, device)
    use_bf16 = cfg.dtype == "bfloat16"
    history, start = History(), 0
    ckpt = Path(cfg.ckpt_dir) / "latest.pt" if cfg.ckpt_dir else None
    if cfg.resume and ckpt is not None and ckpt.exists():
        start, history = restore_checkpoint(load_checkpoint(ckpt), agent, opt, gen, cfg, ckpt,
                                            extra=collector)

    bar = tqdm(range(start, cfg.steps), desc=desc or cfg.algo, disable=not cfg.progress,
               initial=start, total=cfg.steps, leave=False)
    for it in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(it, cfg)
        # ---- collect: num_steps x num_envs transitions with the current policy
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            ro = collector.collect(agent, cfg.num_steps, gen)
        gae_lambda = cfg.gae_lambda if cfg.algo == "ppo" else 1.0
        adv, returns = gae(ro.rewards, ro.values, ro.next_values, ro.dones, cfg.gamma, gae_lambda)
        flat = dict(obs=ro.obs.flatten(0, 1), actions=ro.actions.flatten(), logp_old=ro.logp.flatten(),
                    adv=adv.flatten(), returns=returns.flatten())  # each (T*N, ...)
        # ---- update: one full-batch step (REINFORCE) or epochs of minibatch steps (PPO)
        if cfg.algo == "ppo":
            batches = [idx for _ in range(cfg.epochs)
                       for idx in torch.randperm(cfg.rollout_size, generator=gen)
                       .split(cfg.batch_size)]
        else:
            batches = [torch.arange(cfg.rollout_size)]
        for idx in batches:
            idx = idx.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, metrics = ppo_loss(agent, *(flat[k][idx] for k in
                                                  ("obs", "actions", "logp_old", "adv", "returns")),
                                         cfg=cfg)
            update(agent, opt, loss, cfg, where=f"iteration {it} ({cfg.algo})")
        done = it + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            recent = collector.episode_returns[-10:]
            history.record(done, {"env_steps": collector.env_steps, "loss": loss.item(),
                                  "lr": opt.param_groups[0]["lr"],
                                  "episode_return": float(np.mean(recent)) if recent else 0.0,
                                  **metrics})
            bar.set_postfix(ret=f"{history.last('episode_return'):.0f}")
        if ckpt is not None and (done % cfg.ckpt_every == 0 or done == cfg.steps):
            save_checkpoint(ckpt, checkpoint_state(agent, opt, gen, done, history, cfg,
                                                   extra=collector))
    bar.close()
    envs.close()
    agent.eval()
    evals = evaluate(agent, cfg.env_id, cfg.eval_episodes, seed=10_000 + cfg.seed, device=device)
    return PGResult(agent, history, float(np.mean(evals)), evals, collector.episode_returns,
                    collector.episode_end_steps, collector.episode_end_seconds)


# ----------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(agent: ActorCritic, env_id: str = "CartPole-v1", episodes: int = 20, seed: int = 0,
             device: torch.device | str = "cpu") -> list[float]:
    """Undiscounted return of ``episodes`` greedy episodes (argmax action), run side by side."""
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    envs = [gym.make(env_id) for _ in range(episodes)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])  # (E, obs_dim)
    totals, alive = np.zeros(episodes), np.ones(episodes, dtype=bool)
    while alive.any():
        x = torch.as_tensor(obs, dtype=torch.float32, device=device)
        actions = agent.actor(x).float().argmax(-1).cpu().numpy()  # (E,)
        for i in np.flatnonzero(alive):
            obs[i], r, term, trunc, _ = envs[i].step(int(actions[i]))
            totals[i] += r
            alive[i] = not (term or trunc)
    for e in envs:
        e.close()
    return totals.tolist()


def first_reach(result: PGResult, threshold: float = 475.0, window: int = 10):
    """(env steps, seconds) when the mean of the last ``window`` training episodes first
    reaches ``threshold``; (None, None) if it never does."""
    eps = result.episode_returns
    for i in range(window - 1, len(eps)):
        if np.mean(eps[i - window + 1:i + 1]) >= threshold:
            return result.episode_end_steps[i], result.episode_end_seconds[i]
    return None, None


def compare(algos=("ppo", "reinforce"), seeds=(0, 1, 2), **overrides) -> dict[str, list[PGResult]]:
    """Train each algorithm with each seed on the same budget (the chapter's experiment)."""
    return {algo: [train_pg(PGConfig.from_preset("laptop", algo=algo, seed=s, **overrides),
                            desc=f"{algo} seed {s}") for s in seeds]
            for algo in algos}


def main(argv: list[str] | None = None) -> PGResult:
    cfg = PGConfig.cli(argv, description="REINFORCE / PPO on a gymnasium environment (chapter 1)")
    result = train_pg(cfg)
    steps, _ = first_reach(result)
    print(f"{cfg.algo} on {cfg.env_id}: {cfg.total_env_steps} env steps, "
          f"last training episodes {result.history.last('episode_return'):.1f}, "
          f"greedy eval return {result.eval_return:.1f} over {cfg.eval_episodes} episodes"
          + (f", reached 475 at {steps} steps" if steps else ""))
    return result


if __name__ == "__main__":
    run_cli(main)
