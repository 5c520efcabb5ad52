"""Every trainer gives exactly the same result twice with the same seed on CPU.

Each entry runs a trainer's own function (the one its notebook and claim tests call) on a
tiny laptop-preset config, twice, and compares everything it returns: parameters, metrics,
samples, scores.  Comparison is exact (no tolerance).  A third run with another seed must
differ, so the comparison cannot pass by ignoring what it compares.

On CUDA, some kernels are not deterministic; the gpu presets are therefore reproducible
only up to floating-point noise (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch

from minimal.core.train import History

# module, function, config class, tiny overrides of the laptop preset
TRAINERS = [
    ("char_lm", "train_char_lm", "CharLMConfig",
     dict(steps=6, batch_size=4, block_size=16, n_layer=1, n_head=2, n_embd=16, warmup_steps=2,
          log_every=1, eval_batches=1)),
    ("policy_gradient", "train_pg", "PGConfig",
     dict(steps=3, num_envs=2, num_steps=16, batch_size=16, epochs=2, eval_episodes=2)),
    ("preference_bandit", "train_bandit_policy", "BanditConfig",
     dict(steps=4, n_actions=50, n_offline=100, batch_size=16, method="pg_online")),
    ("delta_learning", "train_student", "DeltaConfig",
     dict(steps=4, dim=20, n_train=500, batch_size=64)),
    ("reward_model", "train_reward_model", "RewardModelConfig",
     dict(steps=3, warmup_steps=1, n_pairs=32, batch_size=8, n_layer=1, n_embd=32,
          response_len=8, n_test=16)),
    ("dpo", "train_dpo", "DPOConfig",
     dict(steps=3, warmup_steps=1, n_pairs=32, batch_size=8, n_layer=1, n_embd=32,
          response_len=8, n_eval=16)),
    ("reward_learning", "compare_preference_models", "RewardLearningConfig",
     dict(n_mdps=2, steps=4, warmup_steps=1, sizes="5,10")),
    ("cpl", "compare_with_pipelines", "CPLConfig",
     dict(n_mdps=2, steps=4, warmup_steps=1, n_pairs=10)),
    ("icl_training", "train_icl", "ICLConfig",
     dict(steps=20, eval_every=10, n_eval=8, batch_size=8, warmup_steps=2, n_embd=16, seq_len=6,
          n_layer=1, n_head=2, K=3)),
    ("rational_choice", "ev_demo", "ChoiceConfig",
     dict(steps=10, warmup_steps=2, batch_size=16, hidden=8, n_eval_pairs=100, n_choices=50)),
    ("rational_choice", "report_demo", "ChoiceConfig",
     dict(steps=10, warmup_steps=2, batch_size=16, hidden=8, n_eval_pairs=100, n_choices=50)),
    ("dpt", "train_dpt", "DPTConfig",
     dict(steps=4, warmup_steps=1, batch_size=4, horizon=8, n_layer=1, n_embd=16, log_every=1)),
    ("algorithm_distillation", "train_ad", "ADConfig",
     dict(steps=4, warmup_steps=1, batch_size=4, horizon=8, n_layer=1, n_embd=16, log_every=1)),
    ("return_conditioning", "train_rcsl", "OfflineConfig",
     dict(steps=4, n_episodes=200, warmup_steps=1, batch_size=32)),
    ("dichotomy_of_control", "train_doc", "DoCConfig",
     dict(steps=4, n_episodes=200, warmup_steps=1, batch_size=32)),
    ("contrastive_repr", "train_representation", "ContrastiveConfig",
     dict(steps=4, n_steps_data=500, d_noise=8, n_hidden=16, batch_size=16, warmup_steps=1)),
    ("rlhf_ppo", "train_rlhf", "RLHFConfig",
     dict(steps=4, ppo_epochs=2, warmup_steps=1, rm_pairs=32, rm_steps=3, rollout_size=8,
          response_len=8, n_eval=16)),
    ("sft", "train_sft", "SFTConfig",
     dict(steps=4, batch_size=8, warmup_steps=1, log_every=1)),
    ("grpo", "train_grpo", "GRPOConfig",
     dict(digits=2, sft_steps=4, steps=4, batch_size=4, group_size=2, eval_size=8, eval_every=2,
          log_every=1, warmup_steps=1)),
    ("prompt_curriculum", "train_pcl", "PCLConfig",
     dict(sft_steps=4, steps=4, batch_size=4, group_size=2, eval_size=8, eval_every=2,
          log_every=1, warmup_steps=1, pool_size=64)),
    ("reasoning_study", "run_study", "StudyConfig",
     dict(study="curriculum", strategies="uniform,pcl", sft_steps=4, steps=2, eval_every=1,
          eval_size=8, report_size=4, report_samples=2, out="artifacts/test_study.json")),
]


def is_timing(name: str) -> bool:
    """Wall-clock measurements (e.g. ``episode_end_seconds``) are the one thing allowed to vary."""
    return "seconds" in name or name.startswith(("wall", "elapsed"))


def flatten(x, depth: int = 0):
    """A plain, exactly comparable picture of whatever a trainer returns."""
    if depth > 8:
        return type(x).__name__
    if isinstance(x, torch.Tensor):
        return ("tensor", tuple(x.shape), str(x.dtype), x.detach().cpu().double().flatten().tolist())
    if isinstance(x, np.ndarray):
        return ("array", x.shape, x.dtype.str, x.astype(float).ravel().tolist())
    if isinstance(x, torch.nn.Module):
        return flatten(x.state_dict(), depth + 1)
    if isinstance(x, History):
        return flatten(vars(x), depth + 1)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: flatten(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x)
                if not is_timing(f.name)}
    if isinstance(x, dict):
        return {str(k): flatten(v, depth + 1) for k, v in x.items() if not is_timing(str(k))}
    if isinstance(x, (list, tuple)):
        return [flatten(v, depth + 1) for v in x]
    if isinstance(x, (int, float, str, bool, type(None), np.generic)):
        return x.item() if isinstance(x, np.generic) else x
    if hasattr(x, "__dict__"):  # an environment or a small helper object: its attributes
        return {k: flatten(v, depth + 1) for k, v in vars(x).items()
                if not k.startswith("_") and not is_timing(k)}
    return type(x).__name__


def run(module: str, function: str, config: str, overrides: dict, seed: int):
    """The trainer's result with every seed field (``seed``, ``data_seed``, ...) set to ``seed``."""
    mod = importlib.import_module(f"minimal.{module}")
    cls = getattr(mod, config)
    seeds = {name: seed for name in cls.field_names() if name.endswith("seed")}
    cfg = cls.from_preset("laptop", **overrides, **seeds, progress=False)
    return flatten(getattr(mod, function)(cfg))


@pytest.mark.parametrize("module, function, config, overrides", TRAINERS,
                         ids=[f"{m}.{f}" for m, f, _, _ in TRAINERS])
def test_same_seed_same_result_other_seed_other_result(module, function, config, overrides):
    first = run(module, function, config, overrides, seed=3)
    again = run(module, function, config, overrides, seed=3)
    assert first == again, f"{module}.{function} is not deterministic for a fixed seed"
    other = run(module, function, config, overrides, seed=4)
    assert other != first, f"{module}.{function} ignores its seed"
