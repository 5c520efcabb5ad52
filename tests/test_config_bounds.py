"""Config bounds are the intended ones, and every config and command line refuses bad input.

The validator itself (one case per rule: type, each kind of bound, choices, finiteness,
cross-field checks, unknown fields and presets, each command-line error kind) is tested
in ``tests/test_config.py``.  This file checks what that cannot: that each field's
*bounds* say what the field means.  :data:`REJECT` lists, for every numeric field name in
``minimal/``, values that must be refused wherever the field appears (a discount of 1, a
probability of 1.1, a learning rate of 0, a count of 0...); loosening a bound in any
config makes a case here fail, and a new numeric field fails until its intended bounds
are written down.  Then, once per config class and once per command line: the laptop
preset is the field defaults, unknown names are refused, and a rejected command writes
nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import typing

import pytest
import torch

import minimal
from minimal.core.config import Config, ConfigError, TrainConfig, _base_type

MODULES = sorted(m.name.removeprefix("minimal.")
                 for m in pkgutil.walk_packages(minimal.__path__, "minimal.")
                 if not m.ispkg and not m.name.endswith("__main__"))
CONFIGS = sorted({cls for name in MODULES
                  for _, cls in inspect.getmembers(importlib.import_module(f"minimal.{name}"),
                                                   inspect.isclass)
                  if issubclass(cls, Config) and cls is not Config}, key=lambda c: c.__name__)
CLIS = [name for name in MODULES if hasattr(importlib.import_module(f"minimal.{name}"), "main")]

PROBABILITY = [-0.1, 1.1]  # a probability, a share or a mixing weight lies in [0, 1]
POSITIVE = [0.0, -0.1]  # a scale, a temperature, a width: zero or less is meaningless
NONNEGATIVE = [-0.1]  # a penalty weight or a coefficient: 0 switches it off
COUNT = [0]  # steps, sizes, numbers of things

# Values each numeric field must refuse, in every config that has it.
REJECT: dict[str, list] = {
    # discounts: gamma = 1 has no infinite-horizon value
    "gamma": [-0.1, 1.0],
    # learning: rates in (0, 1], schedules, clipping
    "lr": [0.0, -1e-3, 1.5], "value_lr": [0.0, 1.5], "min_lr_ratio": PROBABILITY,
    "weight_decay": [-0.1, 1.0], "grad_clip": NONNEGATIVE, "warmup_steps": [-1],
    # RL: clip ranges in (0, 1) (the high side of clip-higher may pass 1), GAE's lambda
    "clip_eps": [0.0, 1.0], "clip_eps_low": [0.0, 1.0], "clip_eps_high": POSITIVE,
    "gae_lambda": PROBABILITY, "vf_coef": NONNEGATIVE, "ent_coef": NONNEGATIVE,
    "format_coef": NONNEGATIVE, "length_coef": NONNEGATIVE, "ucb_c": NONNEGATIVE,
    # KL weight beta >= 0 (0 = no penalty); as DPO's temperature it must be > 0 (below)
    "beta": NONNEGATIVE,
    "tau": POSITIVE, "temperature": POSITIVE, "alpha": POSITIVE, "noise": POSITIVE,
    "signal_scale": POSITIVE, "noise_scale": NONNEGATIVE,
    "lam": [0.0, 1.1],  # CPL's conservative weight lambda in (0, 1]
    # probabilities and shares
    "dropout": [-0.1, 1.0], "val_fraction": [0.0, 1.0], "p_gamble": PROBABILITY,
    "p_random": PROBABILITY, "gamble_success": PROBABILITY, "good_success": PROBABILITY,
    "peak": PROBABILITY, "min_prior": [-0.1, 1.0], "ref_floor": [-0.1, 1.0],
    "noise_corr": [-0.1, 1.0], "keep_frac": [0.0, 1.1], "onehot_mix": PROBABILITY,
    "shared": PROBABILITY, "cos_chosen": [0.0, 1.0], "cos_rejected": [0.0, 1.0],
    "cos_student": [0.0, 1.0],
    # seeds
    "seed": [-1], "data_seed": [-1],
    # counts with a minimum above 1
    "group_size": [1], "K": [1], "n_arms": [1], "n_latents": [1], "candidates": [1],
    "horizon": [1], "seq_len": [1], "block_size": [1], "rollout_size": [1], "n_offline": [1],
    "n_states": [1], "n_attributes": [1], "response_len": [2], "digits": [0, 7],
    "report_samples": [1], "target_gain": PROBABILITY,
    "grid_size": [2], "dim": [4], "n_steps_data": [99], "n_actions": [3],
    "d_noise": [-1], "d_signal": [0],
}
COUNTS = ["D", "batch_size", "ckpt_every", "epochs", "eval_batches", "eval_episodes",
          "eval_every", "eval_size", "hidden", "log_every", "n_choices", "n_embd", "n_episodes",
          "n_eval", "n_eval_pairs", "n_features", "n_head", "n_hidden", "n_layer", "n_mdps",
          "n_seeds", "report_size", "workers",
          "n_pairs", "n_test", "n_train", "num_envs", "num_steps", "pool_size", "ppo_epochs",
          "rm_pairs", "rm_steps", "segment_length", "sft_steps", "steps", "updates_per_batch",
          "value_hidden", "value_steps", "vi_sweeps"]
REJECT.update({name: COUNT for name in COUNTS})
# beta is a temperature, not a penalty weight, in these: beta = 0 would make the loss flat
TEMPERATURE_BETA = {"DPOConfig", "DeltaConfig", "BanditConfig"}
UNBOUNDED = {"rater_bias"}  # the raters' bias may have either sign: r* ignores it

NUMERIC = [(cls, f.name, _base_type(typing.get_type_hints(cls)[f.name])[0])
           for cls in CONFIGS for f in dataclasses.fields(cls)
           if _base_type(typing.get_type_hints(cls)[f.name])[0] in (int, float)]


def test_every_numeric_field_has_its_intended_bounds_written_down():
    missing = sorted({name for _, name, _ in NUMERIC} - set(REJECT) - UNBOUNDED)
    assert not missing, f"write the intended bounds of {missing} into REJECT"
    unused = sorted(set(REJECT) - {name for _, name, _ in NUMERIC})
    assert not unused, f"REJECT names fields that no config has: {unused}"


CASES = [(cls, name, tp(value)) for cls, name, tp in NUMERIC if name in REJECT
         for value in REJECT[name] + ([0.0] if name == "beta" and cls.__name__ in
                                      TEMPERATURE_BETA else [])]


@pytest.mark.unit
@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_bounds_refuse_what_the_fields_cannot_mean(cls):
    for _, name, value in [c for c in CASES if c[0] is cls]:
        with pytest.raises(ConfigError) as err:
            cls.from_preset("laptop", **{name: value})
        assert f".{name} = {value!r}" in str(err.value), str(err.value)


@pytest.mark.unit
@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_laptop_is_the_defaults_and_unknown_names_are_refused(cls):
    assert cls() == cls.from_preset("laptop"), f"{cls.__name__}() differs from its laptop preset"
    for preset in cls.all_presets():
        cls.from_preset(preset, **({"device": "cpu"} if "device" in cls.field_names() else {}))
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'; choose one of \[.*'laptop'"):
        cls.from_preset("nope")
    with pytest.raises(ConfigError, match=r"unknown field 'no_such_field'"):
        cls.from_preset("laptop", no_such_field=1)


def test_every_trainer_has_a_config_and_a_command_line():
    names = {c.__name__ for c in CONFIGS}
    assert {"TrainConfig", "CharLMConfig", "PGConfig", "DPOConfig", "GRPOConfig"} <= names
    assert len(CLIS) >= 19


@pytest.mark.parametrize("module", CLIS)
def test_every_command_line_refuses_a_bad_value_and_writes_nothing(module, capsys, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"minimal.{module}").main(["--set", "seed=-1"])
    assert exit_info.value.code == 2
    assert "seed = -1: must be at least 0" in capsys.readouterr().err
    assert os.listdir(tmp_path) == [], "a rejected command wrote files"


def test_checkpoint_dir_that_is_a_file_is_named(tmp_path):
    from minimal.core.train import train

    not_a_dir = tmp_path / "ckpt"
    not_a_dir.write_text("a file, not a folder")
    cfg = TrainConfig(steps=2, warmup_steps=0, ckpt_dir=str(not_a_dir), progress=False)
    model = torch.nn.Linear(2, 1)
    with pytest.raises((ConfigError, NotADirectoryError, FileExistsError, ValueError),
                       match="ckpt"):
        train(model, cfg, lambda gen: torch.zeros(4, 2),
              lambda m, batch: (m(batch).pow(2).mean(), {}), desc="x")
