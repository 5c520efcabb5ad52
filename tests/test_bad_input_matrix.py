"""Bad input at every public entry point: one clear error that names the problem.

The matrix is built from the code itself, so a new trainer is covered the day it lands:
every ``Config`` subclass in ``minimal/`` (unknown preset, unknown field, a wrong type and
an out-of-range value for every field) and every ``python -m minimal.<module>`` command
line (unknown preset, unknown field, unreadable value, malformed ``--set``).  Nothing may
be written when the input is rejected.  Hypothesis fuzzes the config parser in
``tests/test_config.py``; loss shapes, environments and checkpoints are below.
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
from minimal.config import Config, ConfigError, TrainConfig, _base_type

MODULES = sorted(m.name for m in pkgutil.iter_modules(minimal.__path__))
CONFIGS = sorted({cls for name in MODULES
                  for _, cls in inspect.getmembers(importlib.import_module(f"minimal.{name}"),
                                                   inspect.isclass)
                  if issubclass(cls, Config) and cls.__module__.startswith("minimal.")
                  and cls not in (Config,)}, key=lambda c: c.__name__)
CLIS = [name for name in MODULES
        if hasattr(importlib.import_module(f"minimal.{name}"), "main")]


def bad_values(cls: type[Config]) -> list[tuple[str, object, str]]:
    """(field, value, what the error must say) for a wrong type and each violated bound."""
    hints = typing.get_type_hints(cls)
    cases = []
    for f in dataclasses.fields(cls):
        tp, _ = _base_type(hints[f.name])
        wrong = 3 if tp is str else "three"
        cases.append((f.name, wrong, "expected"))
        meta = f.metadata
        step = 1 if tp is int else 0.5
        for key, value in (("gt", meta.get("gt")), ("ge", None if meta.get("ge") is None
                                                         else meta["ge"] - step),
                           ("lt", meta.get("lt")), ("le", None if meta.get("le") is None
                                                         else meta["le"] + step)):
            if value is not None and tp in (int, float):
                cases.append((f.name, tp(value), "must be"))
        if meta.get("choices") is not None and tp is str:
            cases.append((f.name, "no-such-choice", "must be one of"))
    return cases


MATRIX = [(cls, *case) for cls in CONFIGS for case in bad_values(cls)]


def test_every_trainer_is_in_the_matrix():
    names = {c.__name__ for c in CONFIGS}
    assert {"TrainConfig", "CharLMConfig", "PGConfig", "DPOConfig", "RewardModelConfig"} <= names
    assert len(CONFIGS) >= 16 and len(CLIS) >= 15 and len(MATRIX) > 200


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_unknown_preset_and_field_are_named(cls):
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'; choose one of \[.*'laptop'"):
        cls.from_preset("nope")
    with pytest.raises(ConfigError, match=r"unknown field 'no_such_field'"):
        cls.from_preset("laptop", no_such_field=1)
    # the field defaults are the laptop preset, so Cls() is what the notebooks run
    assert cls() == cls.from_preset("laptop"), f"{cls.__name__}() differs from its laptop preset"


@pytest.mark.parametrize("cls, name, value, says", MATRIX,
                         ids=[f"{c.__name__}.{n}={v!r}" for c, n, v, _ in MATRIX])
def test_a_bad_field_value_is_rejected_with_its_name(cls, name, value, says):
    with pytest.raises(ConfigError) as err:
        cls.from_preset("laptop", **{name: value})
    message = str(err.value)
    assert f".{name} = {value!r}" in message and says in message, message


@pytest.mark.parametrize("module", CLIS)
@pytest.mark.parametrize("argv, says", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--set", "no_such_field=1"], "unknown field 'no_such_field'"),
    (["--set", "seed=abc"], "cannot read 'abc' as int"),
    (["--set", "seed"], "--set expects KEY=VALUE"),
    (["--set", "seed=-1"], "seed = -1: must be at least 0"),
], ids=["preset", "field", "type", "syntax", "range"])
def test_every_command_line_rejects_bad_input_and_writes_nothing(module, argv, says, capsys,
                                                                 tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(f"minimal.{module}").main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err
    assert os.listdir(tmp_path) == [], "a rejected command wrote files"


def test_checkpoint_dir_that_is_a_file_is_named(tmp_path):
    from minimal.train import train

    not_a_dir = tmp_path / "ckpt"
    not_a_dir.write_text("a file, not a folder")
    cfg = TrainConfig(steps=2, warmup_steps=0, ckpt_dir=str(not_a_dir), progress=False)
    model = torch.nn.Linear(2, 1)
    with pytest.raises((ConfigError, NotADirectoryError, FileExistsError, ValueError),
                       match="ckpt"):
        train(model, cfg, lambda gen: torch.zeros(4, 2),
              lambda m, batch: (m(batch).pow(2).mean(), {}), desc="x")
