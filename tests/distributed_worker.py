"""One process of the distributed tests (``tests/test_distributed.py``); not a test itself.

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py OUT SPEC...
    python tests/distributed_worker.py OUT SPEC...          # the one-process reference

Each SPEC is ``name`` (a trainer of :data:`TINY`) or ``name:key=value,key=value`` with
extra config overrides (``ckpt_dir=...``, ``resume=true``).  Every rank runs each trainer
in turn on one torch thread and writes ``OUT/<name>.rank<r>.pkl``, the result flattened as
``tests/test_determinism.flatten`` does.  With ``DIE_AFTER_CHECKPOINT=1`` in the
environment, rank 0 exits with status 3 right after writing its first checkpoint: the
killed run of the resume test (torchrun then stops the other rank).
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_determinism import flatten  # noqa: E402

# name -> (module, function, config class, tiny overrides with batches that split in 2)
TINY = {
    "char_lm": ("char_lm", "train_char_lm", "CharLMConfig",
                dict(steps=6, batch_size=8, block_size=16, n_layer=1, n_head=2, n_embd=16,
                     warmup_steps=2, log_every=1, eval_batches=1, ckpt_every=2)),
    "reward_model": ("reward_model", "train_reward_model", "RewardModelConfig",
                     dict(steps=3, warmup_steps=1, n_pairs=32, batch_size=8, n_layer=1,
                          n_embd=32, response_len=8, n_test=16)),
    "dpo": ("dpo", "train_dpo", "DPOConfig",
            dict(steps=3, warmup_steps=1, n_pairs=32, batch_size=8, n_layer=1, n_embd=32,
                 response_len=8, n_eval=16)),
    "icl_training": ("icl_training", "train_icl", "ICLConfig",
                     dict(steps=4, eval_every=2, n_eval=8, batch_size=8, warmup_steps=1,
                          n_embd=16, seq_len=6, n_layer=1, n_head=2, K=3)),
    "dpt": ("dpt", "train_dpt", "DPTConfig",
            dict(steps=3, warmup_steps=1, batch_size=4, horizon=8, n_layer=1, n_embd=16,
                 log_every=1)),
    "algorithm_distillation": ("algorithm_distillation", "train_ad", "ADConfig",
                               dict(steps=3, warmup_steps=1, batch_size=4, horizon=8,
                                    n_layer=1, n_embd=16, log_every=1)),
    "sft": ("sft", "train_sft", "SFTConfig",
            dict(steps=3, batch_size=8, warmup_steps=1, log_every=1, eval_size=8)),
    "grpo": ("grpo", "train_grpo", "GRPOConfig",
             dict(digits=2, sft_steps=4, steps=2, batch_size=4, group_size=2, eval_size=8,
                  eval_every=2, log_every=1, warmup_steps=1, ckpt_every=2)),
    "prompt_curriculum": ("prompt_curriculum", "train_pcl", "PCLConfig",
                          dict(sft_steps=3, steps=2, batch_size=4, group_size=2, eval_size=8,
                               eval_every=2, log_every=1, warmup_steps=1, pool_size=64)),
    "rlhf_ppo": ("rlhf_ppo", "train_rlhf", "RLHFConfig",
                 dict(steps=2, ppo_epochs=2, warmup_steps=1, rm_pairs=32, rm_steps=2,
                      rollout_size=8, response_len=8, n_eval=16)),
}


def parse(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition(":")
    extra = {}
    for item in filter(None, rest.split(",")):
        key, _, text = item.partition("=")
        extra[key] = {"true": True, "false": False}.get(text, text)
    return name, extra


def die_after_first_checkpoint() -> None:
    import minimal.core.train as train_module

    save = train_module.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        os._exit(3)

    train_module.save_checkpoint = save_then_die


def main() -> None:
    out, specs = Path(sys.argv[1]), sys.argv[2:]
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("DIE_AFTER_CHECKPOINT") == "1" and rank == 0:
        die_after_first_checkpoint()
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        name, extra = parse(spec)
        module, function, config, overrides = TINY[name]
        mod = importlib.import_module(f"minimal.{module}")
        cfg = getattr(mod, config).from_preset("laptop", **{**overrides, **extra,
                                                            "progress": False})
        result = getattr(mod, function)(cfg)
        with open(out / f"{name}.rank{rank}.pkl", "wb") as f:
            pickle.dump(flatten(result), f)


if __name__ == "__main__":
    main()
