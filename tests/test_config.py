"""Config validation and the command line: every bad input gets a message that names it.

One case per validation rule (a wrong type, each kind of bound, choices, a finite number,
a required value, each cross-field rule, an unknown field or preset) and per command-line
error kind, on one config; ``tests/test_config_bounds.py`` checks that every config's
bounds are the intended ones."""

import pytest

from minimal.char_lm import CharLMConfig
from minimal.core.config import ConfigError, TrainConfig


@pytest.mark.parametrize("overrides, message", [
    ({"lr": -0.1}, "CharLMConfig.lr = -0.1: must be greater than 0"),
    ({"lr": 2.0}, "CharLMConfig.lr = 2.0: must be at most 1"),
    ({"steps": 0}, "CharLMConfig.steps = 0: must be greater than 0"),
    ({"steps": "10"}, "CharLMConfig.steps = '10': expected int, got str"),
    ({"steps": 2.5}, "CharLMConfig.steps = 2.5: expected int, got float"),
    ({"progress": 1}, "CharLMConfig.progress = 1: expected bool, got int"),
    ({"dropout": 1.0}, "CharLMConfig.dropout = 1.0: must be less than 1"),
    ({"device": "tpu"}, "CharLMConfig.device = 'tpu': must be one of ['cpu', 'cuda', 'auto']"),
    ({"n_embd": 100, "n_head": 3}, "n_embd = 100 is not divisible by n_head = 3"),
    ({"warmup_steps": 5000}, "warmup_steps = 5000 exceeds steps = 1000"),
    ({"resume": True}, "resume = True needs ckpt_dir"),
    ({"stpes": 3}, "unknown field 'stpes' (did you mean 'steps'?)"),
    ({"seed": None}, "CharLMConfig.seed = None: a value is required"),
    ({"seed": -1}, "CharLMConfig.seed = -1: must be at least 0"),
    ({"lr": float("nan")}, "CharLMConfig.lr = nan: must be a finite number"),
    ({"lr": float("inf")}, "CharLMConfig.lr = inf: must be a finite number"),
])
def test_bad_values_are_named(overrides, message):
    with pytest.raises(ConfigError) as err:
        CharLMConfig.from_preset("laptop", **overrides)
    assert message in str(err.value)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match=r"unknown preset 'tpu'; choose one of \['gpu', 'laptop'\]"):
        CharLMConfig.from_preset("tpu")


def test_int_is_accepted_for_float_and_stored_as_float():
    cfg = TrainConfig(lr=1)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)


def test_replace_validates():
    cfg = CharLMConfig.from_preset("laptop")
    assert cfg.replace(steps=70).steps == 70
    with pytest.raises(ConfigError, match="must be greater than 0"):
        cfg.replace(steps=-1)
    with pytest.raises(ConfigError, match="unknown field 'step'"):
        cfg.replace(step=3)


def test_presets_differ_where_they_should():
    laptop, gpu = CharLMConfig.from_preset("laptop"), CharLMConfig.from_preset("gpu")
    assert (laptop.device, laptop.dtype) == ("cpu", "float32")
    assert (gpu.device, gpu.dtype) == ("cuda", "bfloat16")
    assert gpu.n_embd > laptop.n_embd and gpu.steps > laptop.steps and gpu.ckpt_dir


def test_cli_builds_the_config():
    cfg = CharLMConfig.cli(["--preset", "gpu", "--set", "device=cpu", "steps=3", "resume=false",
                            "ckpt_dir=none", "lr=1e-3", "warmup_steps=1"])
    assert (cfg.device, cfg.steps, cfg.resume, cfg.ckpt_dir, cfg.lr) == ("cpu", 3, False, None, 1e-3)
    assert cfg.n_layer == 6  # the rest of the gpu preset is kept


@pytest.mark.parametrize("argv, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--set", "stepz=3"], "unknown field 'stepz'"),
    (["--set", "steps=many"], "CharLMConfig.steps: cannot read 'many' as int"),
    (["--set", "progress=maybe"], "expected true or false, got 'maybe'"),
    (["--set", "lr=-1"], "CharLMConfig.lr = -1.0: must be greater than 0"),
    (["--set", "steps"], "--set expects KEY=VALUE, got 'steps'"),
])
def test_cli_rejects_bad_input_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        CharLMConfig.cli(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------ property-based
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 10**7), lr=st.floats(1e-8, 1.0))
def test_cli_round_trips_valid_values(steps, lr):
    cfg = CharLMConfig.cli(["--set", f"steps={steps}", f"lr={lr!r}", "warmup_steps=0"])
    assert (cfg.steps, cfg.lr) == (steps, lr)


def _not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1, max_size=12).filter(lambda t: "\x00" not in t and _not_an_int(t)))
def test_cli_rejects_any_non_integer_text_for_an_int_field(text):
    with pytest.raises(SystemExit) as exit_info:
        CharLMConfig.cli(["--set", f"steps={text}"])
    assert exit_info.value.code == 2


@settings(max_examples=60, deadline=None)
@given(lr=st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True)))
def test_out_of_range_learning_rates_are_rejected(lr):
    with pytest.raises(ConfigError, match="CharLMConfig.lr"):
        CharLMConfig.from_preset("laptop", lr=lr)


def test_stage_checkpoints_put_each_stage_in_its_own_folder_and_resume_with_the_run():
    cfg = CharLMConfig(ckpt_dir="runs/a", ckpt_every=7, resume=True)
    assert cfg.stage_checkpoints("sft") == {"ckpt_dir": "runs/a/sft", "ckpt_every": 7,
                                            "resume": True}
    assert CharLMConfig().stage_checkpoints("sft") == {"ckpt_dir": None, "ckpt_every": 100,
                                                       "resume": False}
