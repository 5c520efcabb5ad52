"""Our PPO (minimal.policy_gradient) against Stable-Baselines3's PPO on CartPole-v1.

    .venv/bin/pip install -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/ppo_vs_sb3.py                 # 3 seeds, ~1-2 min on 2 cores
    .venv/bin/python benchmarks/ppo_vs_sb3.py --seeds 0 1 2 3 4 --out benchmarks/ppo_vs_sb3.md

Both run in this process, one after the other for each seed, on one torch thread,
with the same hyperparameters (our ``laptop`` preset translated to SB3's names),
the same seeds and the same budget of environment steps.  For each run we record
the environment steps and wall-clock seconds from the start of training until the
mean return of the last 10 finished training episodes first reaches 475, and the
greedy return over 20 evaluation episodes at the end.  SB3 is a benchmark-only
dependency; nothing from it is used by ``minimal/``.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minimal.policy_gradient import PGConfig, first_reach, train_pg  # noqa: E402

THRESHOLD, WINDOW, EVAL_EPISODES = 475.0, 10, 20


def run_ours(cfg: PGConfig) -> dict:
    start = time.perf_counter()
    result = train_pg(cfg)
    total = time.perf_counter() - start
    steps, seconds = first_reach(result, THRESHOLD, WINDOW)
    return {"steps": steps, "seconds": seconds, "total_seconds": total,
            "eval": result.eval_return}


def run_sb3(cfg: PGConfig) -> dict:
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class ReachCallback(BaseCallback):
        """Record (env steps, seconds) when the last WINDOW episodes first average THRESHOLD."""

        def _on_training_start(self):
            self.t0, self.returns, self.hit = time.perf_counter(), [], (None, None)

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:  # added by SB3's Monitor wrapper at episode end
                    self.returns.append(info["episode"]["r"])
                    if (self.hit[0] is None and len(self.returns) >= WINDOW
                            and np.mean(self.returns[-WINDOW:]) >= THRESHOLD):
                        self.hit = (self.num_timesteps, time.perf_counter() - self.t0)
            return True

    def cosine(progress_remaining: float) -> float:  # our lr_at with warmup 0, floor 0
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * (1 - progress_remaining)))

    start = time.perf_counter()
    env = make_vec_env(cfg.env_id, n_envs=cfg.num_envs, seed=cfg.seed)
    model = PPO("MlpPolicy", env, learning_rate=cosine, n_steps=cfg.num_steps,
                batch_size=cfg.batch_size, n_epochs=cfg.epochs, gamma=cfg.gamma,
                gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_eps, ent_coef=cfg.ent_coef,
                vf_coef=cfg.vf_coef, max_grad_norm=cfg.grad_clip, seed=cfg.seed, device="cpu",
                policy_kwargs={"net_arch": {"pi": [cfg.hidden] * 2, "vf": [cfg.hidden] * 2},
                               "activation_fn": torch.nn.Tanh})
    callback = ReachCallback()
    model.learn(total_timesteps=cfg.total_env_steps, callback=callback)
    returns = []
    for i in range(EVAL_EPISODES):
        e = gym.make(cfg.env_id)
        obs, _ = e.reset(seed=10_000 + cfg.seed + i)
        done, ret = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = e.step(int(action))
            ret, done = ret + r, term or trunc
        returns.append(ret)
    total = time.perf_counter() - start
    steps, seconds = callback.hit
    return {"steps": steps, "seconds": seconds, "total_seconds": total,
            "eval": float(np.mean(returns))}


def fmt(values, digits=0):
    ok = [v for v in values if v is not None]
    if not ok:
        return "never"
    spread = f" ± {statistics.stdev(ok):.{digits}f}" if len(ok) > 1 else ""
    miss = f" ({len(values) - len(ok)} never)" if len(ok) < len(values) else ""
    return f"{statistics.mean(ok):.{digits}f}{spread}{miss}"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--note", default="", help="a line about the machine, added to the table")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # both libraries on one thread (ours sets it itself as well)
    import stable_baselines3

    cfg0 = PGConfig.from_preset("laptop", progress=False)
    rows, ours, sb3 = [], [], []
    for seed in args.seeds:
        cfg = cfg0.replace(seed=seed)
        o, s = run_ours(cfg), run_sb3(cfg)
        ours.append(o), sb3.append(s)
        rows.append(f"| {seed} | {o['steps']} | {s['steps']} | {o['seconds']:.1f} | "
                    f"{s['seconds']:.1f} | {o['total_seconds']:.1f} | {s['total_seconds']:.1f} | "
                    f"{o['eval']:.0f} | {s['eval']:.0f} |".replace("None", "never"))
        print(rows[-1], flush=True)
    both = [(o, s) for o, s in zip(ours, sb3) if o["seconds"] and s["seconds"]]
    time_ratio = [o["seconds"] / s["seconds"] for o, s in both]
    step_ratio = [o["steps"] / s["steps"] for o, s in both]
    lines = [
        "# Our PPO vs Stable-Baselines3 PPO on CartPole-v1", "",
        f"`python benchmarks/ppo_vs_sb3.py --seeds {' '.join(map(str, args.seeds))}`; "
        f"stable-baselines3 {stable_baselines3.__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}, one torch thread, same machine and process.", "",
        f"Budget {cfg0.total_env_steps} env steps ({cfg0.num_envs} envs x {cfg0.num_steps} steps "
        f"x {cfg0.steps} iterations), {cfg0.epochs} epochs of minibatch {cfg0.batch_size}, "
        f"lr {cfg0.lr} with cosine decay, gamma {cfg0.gamma}, GAE lambda {cfg0.gae_lambda}, "
        f"clip {cfg0.clip_eps}, 64-64 tanh MLPs for actor and critic.  'Reach 475': the first "
        f"time the mean of the last {WINDOW} training episodes is at least 475.  'Eval': mean "
        f"greedy return over {EVAL_EPISODES} episodes after training.", "",
        "| seed | ours: steps to 475 | SB3: steps to 475 | ours: s to 475 | SB3: s to 475 | "
        "ours: total s | SB3: total s | ours: eval | SB3: eval |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"- steps to 475: ours {fmt([o['steps'] for o in ours])}, "
        f"SB3 {fmt([s['steps'] for s in sb3])}; "
        f"ratio ours/SB3 {fmt(step_ratio, 2)}",
        f"- seconds to 475: ours {fmt([o['seconds'] for o in ours], 1)}, "
        f"SB3 {fmt([s['seconds'] for s in sb3], 1)}; ratio ours/SB3 {fmt(time_ratio, 2)}",
        f"- total seconds for the whole budget (construction, training and the greedy evaluation): "
        f"ours {fmt([o['total_seconds'] for o in ours], 1)}, "
        f"SB3 {fmt([s['total_seconds'] for s in sb3], 1)}", "",
    ] + ([args.note, ""] if args.note else [])
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
