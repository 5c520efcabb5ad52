"""Problems a run meets outside its config's values: one line that names them, exit 2.

A command ``python -m minimal.<module> ...`` with a ``ckpt_dir`` it cannot use, a checkpoint
it cannot read or continue, a GPU that is not there, a missing corpus, a ``block_size`` too
long for the corpus, a non-finite number or a loss that becomes NaN must stop before any
training where that can be known (during it for the loss), print exactly one line
``python -m minimal.<module>: error: <what, and what to do>`` on stderr, exit with status 2,
print no traceback and leave every file it found as it was.  Library calls keep raising
ordinary exceptions (``ValueError`` and its subclasses), as the other tests rely on.

Each case runs once as a real command (``sys.executable -m minimal.<module>``, a few seconds
each, mostly importing torch); its variants run the same ``main`` in this process.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import re
import runpy
import shutil
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import pytest
import torch
from test_determinism import TRAINERS

import minimal
from minimal.char_lm import (
    CharLMConfig,
    check_block_size,
    largest_block_size,
    load_corpus,
    train_char_lm,
    validation_size,
)
from minimal.core.config import (
    Config,
    ConfigError,
    RunError,
    TrainConfig,
    _base_type,
    command_line_modules,
    run_cli,
)
from minimal.core.train import load_checkpoint, preflight, save_checkpoint, train

TINY_GPT = dict(steps=3, warmup_steps=0, batch_size=4, block_size=16, n_layer=1, n_head=2,
                n_embd=16, eval_batches=1)
TINY_DPO = dict(steps=3, warmup_steps=1, n_pairs=32, batch_size=8, n_layer=1, n_embd=32,
                response_len=8, n_eval=16)
LIBRARY_MODULES = sorted(
    {".".join(p.relative_to(Path(minimal.__file__).parent).with_suffix("").parts)
     for p in Path(minimal.__file__).parent.rglob("*.py") if not p.stem.startswith("_")}
    - set(command_line_modules()))


def settings(**values) -> list[str]:
    return ["--set"] + [f"{k}={v}" for k, v in values.items()]


def command(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m minimal.<module> args`` in ``cwd`` as a user would; text keeps its ``\r``."""
    proc = subprocess.run([sys.executable, "-m", f"minimal.{module}", *args], cwd=cwd,
                          capture_output=True, timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def shown(stderr: str) -> list[str]:
    """The non-blank lines a terminal shows: a progress bar redraws itself after ``\\r``."""
    lines = (line.rsplit("\r", 1)[-1].strip() for line in stderr.split("\n"))
    return [line for line in lines if line]


def one_error_line(module: str, returncode, stderr: str, *says: str) -> str:
    """Check status 2, no traceback and a single line naming the problem; return it."""
    lines = shown(stderr)
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"python -m minimal.{module}: error: "), lines[0]
    for words in says:
        assert words in lines[0], lines[0]
    return lines[0]


def in_process(module: str, argv: list[str], capsys, *says: str) -> str:
    """The same ``main`` in this process, through the ``__main__`` block's :func:`run_cli`."""
    main = importlib.import_module(f"minimal.{module}").main

    def call():
        main(argv)

    call.__module__ = main.__module__  # run_cli names the command after it
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(call)
    return one_error_line(module, exit_info.value.code, capsys.readouterr().err, *says)


def files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def gpt_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint of a tiny char-LM run at step 3 (the TINY_GPT command line's config)."""
    folder = tmp_path_factory.mktemp("gpt_run")
    train_char_lm(CharLMConfig(**TINY_GPT, ckpt_dir=str(folder), progress=False))
    return folder / "latest.pt"


@pytest.fixture
def run_dir(tmp_path, gpt_checkpoint) -> Path:
    """``tmp_path/ck`` holding a copy of that checkpoint."""
    (tmp_path / "ck").mkdir()
    shutil.copy(gpt_checkpoint, tmp_path / "ck" / "latest.pt")
    return tmp_path / "ck"


# ------------------------------------------------------------- 1. ckpt_dir unusable
def test_ckpt_dir_under_a_file_stops_before_training(tmp_path):
    (tmp_path / "afile").write_text("a file, not a folder")
    before = files(tmp_path)
    proc = command("char_lm", *settings(**TINY_GPT, ckpt_dir="afile/sub"), cwd=tmp_path)
    one_error_line("char_lm", proc.returncode, proc.stderr,
                   "ckpt_dir = 'afile/sub' lies under 'afile', a file, not a folder",
                   "pick another ckpt_dir")
    assert proc.stdout == "" and files(tmp_path) == before


def test_ckpt_dir_that_is_a_file_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file, not a folder")
    in_process("char_lm", settings(**TINY_GPT, ckpt_dir="afile"), capsys,
               "ckpt_dir = 'afile' is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; the probe failure "
                    "is tested below by making the probe fail")
def test_ckpt_dir_that_is_not_writable_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = command("char_lm", *settings(**TINY_GPT, ckpt_dir="locked/run"), cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    one_error_line("char_lm", proc.returncode, proc.stderr, "cannot create files in 'locked'",
                   "pick a writable ckpt_dir")
    assert list(locked.iterdir()) == []


def test_a_folder_where_no_file_can_be_created_is_named(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("minimal.core.train.tempfile.NamedTemporaryFile", refuse)
    with pytest.raises(RunError, match=r"cannot create files in .*\(Permission denied\); "
                                       "pick a writable ckpt_dir"):
        preflight(TrainConfig(ckpt_dir=str(tmp_path / "run")))
    preflight(TrainConfig(ckpt_dir=None))  # nothing to write, nothing to check


# --------------------------------------------------- 2. checkpoint file unreadable
def test_an_empty_checkpoint_is_named_not_an_index_error(run_dir):
    (run_dir / "latest.pt").write_bytes(b"")
    proc = command("char_lm", *settings(**TINY_GPT, ckpt_dir="ck", resume="true"),
                   cwd=run_dir.parent)
    line = one_error_line("char_lm", proc.returncode, proc.stderr,
                          "checkpoint ck/latest.pt is corrupt or not a checkpoint of this code "
                          "(the file is empty); delete it or pick another ckpt_dir")
    assert "IndexError" not in proc.stderr and "weights_only" not in line
    assert (run_dir / "latest.pt").read_bytes() == b""


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_damaged_checkpoint_is_named_without_torchs_unsafe_hint(damage, run_dir, capsys,
                                                                   monkeypatch):
    path = run_dir / "latest.pt"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == "truncated"
                     else bytes(range(256)) * 4)
    before = files(run_dir)
    monkeypatch.chdir(run_dir.parent)
    line = in_process("char_lm", settings(**TINY_GPT, ckpt_dir="ck", resume="true"), capsys,
                      "checkpoint ck/latest.pt is corrupt or not a checkpoint of this code",
                      "delete it or pick another ckpt_dir")
    assert "weights_only" not in line and "Re-running" not in line
    assert files(run_dir) == before
    with pytest.raises(ValueError, match="is corrupt"):  # a library call: still a ValueError
        load_checkpoint(path)


# ---------------------------------------------------------- 3. non-finite numbers
def test_an_infinite_beta_is_rejected_before_training(tmp_path):
    proc = command("dpo", "--set", "beta=inf", cwd=tmp_path)
    one_error_line("dpo", proc.returncode, proc.stderr,
                   "DPOConfig.beta = inf: must be a finite number")
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, shows", [("nan", "nan"), ("-inf", "-inf"), ("inf", "inf")])
def test_a_non_finite_learning_rate_is_rejected(text, shows, capsys):
    in_process("char_lm", ["--set", f"lr={text}"], capsys,
               f"CharLMConfig.lr = {shows}: must be a finite number")


CONFIGS = sorted({cls for name in ["core.config", *command_line_modules()]
                  for cls in vars(importlib.import_module(f"minimal.{name}")).values()
                  if isinstance(cls, type) and issubclass(cls, Config) and cls is not Config},
                 key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_float_field_refuses_non_finite_values(cls):
    hints = typing.get_type_hints(cls)
    floats = [f.name for f in dataclasses.fields(cls) if _base_type(hints[f.name])[0] is float]
    assert floats, cls
    for name in floats:
        for value in (math.inf, -math.inf, math.nan):
            with pytest.raises(ConfigError) as err:
                cls.from_preset("laptop", **{name: value})
            assert str(err.value) == f"{cls.__name__}.{name} = {value!r}: must be a finite number"


# ---------------------------------------------- 4. checkpoints already in ckpt_dir
def test_existing_checkpoints_are_not_overwritten_without_resume(run_dir):
    before = files(run_dir)
    proc = command("char_lm", *settings(**TINY_GPT, ckpt_dir="ck"), cwd=run_dir.parent)
    one_error_line("char_lm", proc.returncode, proc.stderr,
                   "ckpt_dir = 'ck' already holds checkpoints (ck/latest.pt)",
                   "--set resume=true", "--overwrite", "pick another ckpt_dir")
    assert files(run_dir) == before


def test_a_stage_checkpoint_counts_too_and_overwrite_is_deliberate(tmp_path, gpt_checkpoint,
                                                                   capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck" / "sft").mkdir(parents=True)
    shutil.copy(gpt_checkpoint, tmp_path / "ck" / "sft" / "latest.pt")
    before = files(tmp_path)
    in_process("grpo", settings(ckpt_dir="ck", ckpt_every=2), capsys,
               "already holds checkpoints (ck/sft/latest.pt)")
    assert files(tmp_path) == before
    in_process("char_lm", settings(**TINY_GPT, ckpt_dir="ck", resume="true") + ["--overwrite"],
               capsys, "--overwrite and resume = True contradict each other")
    # --overwrite: a new run replaces them, as every run did before this check existed
    importlib.import_module("minimal.char_lm").main(settings(**TINY_GPT, ckpt_dir="ck", seed=1)
                                                + ["--overwrite"])
    assert load_checkpoint(tmp_path / "ck" / "latest.pt")["config"]["seed"] == 1


# ------------------------------------------------------ 5. block_size over the corpus
def test_a_block_size_longer_than_the_corpus_names_its_length_and_the_largest(tmp_path):
    cfg = CharLMConfig(**TINY_GPT)
    n = len(load_corpus(cfg.corpus))
    largest = largest_block_size(n, cfg.val_fraction)
    proc = command("char_lm", "--set", "block_size=100000", cwd=tmp_path)
    line = one_error_line("char_lm", proc.returncode, proc.stderr,
                          "CharLMConfig.block_size = 100000 is too long for the corpus",
                          f"({n:,} characters)", "the validation split takes the last 100,001",
                          "leaves 0 for training", f"the largest block_size that fits is {largest}")
    assert "0 tokens" not in line
    with pytest.raises(ConfigError, match=f"the largest block_size that fits is {largest}"):
        train_char_lm(cfg.replace(block_size=largest + 1))  # a library call: a ValueError
    fits = cfg.replace(block_size=largest)  # both splits hold a window and its target
    assert n - validation_size(n, fits) > largest and validation_size(n, fits) > largest
    check_block_size(n, fits)


# ---------------------------------------------- 6. modules without a command line
def test_a_module_without_a_command_line_says_so(tmp_path):
    proc = command("worlds.bandits", "--preset", "laptop", cwd=tmp_path)
    line = one_error_line("worlds.bandits", proc.returncode, proc.stderr,
                          "minimal.worlds.bandits is a library module without a command line")
    for trainer in ("char_lm", "grpo", "policy_gradient", "rlhf_ppo"):
        assert trainer in line


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_every_library_module_refuses_python_dash_m(module, capsys):
    assert {"worlds.bandits", "worlds.gridworld", "preferences", "core.tabular"} <= set(LIBRARY_MODULES)
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_info:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is imported already
        runpy.run_module(f"minimal.{module}", run_name="__main__", alter_sys=True)
    one_error_line(module, exit_info.value.code, capsys.readouterr().err,
                   f"minimal.{module} is a library module without a command line")


def test_python_dash_m_minimal_lists_the_trainers(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "minimal"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    listed = [line.strip() for line in proc.stdout.splitlines()[2:]]
    assert listed == command_line_modules() and len(listed) == 20
    from minimal.__main__ import list_trainers

    assert list_trainers(["char_lm"]) == 2


def test_every_trainer_runs_its_main_through_run_cli():
    for name in command_line_modules():
        text = (Path(minimal.__file__).parent / f"{name}.py").read_text()
        assert '\n\nif __name__ == "__main__":\n    run_cli(main)\n' in text, name


# --------------------------------------------------------- 7. the other runtime cases
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_the_gpu_preset_without_cuda_stops_at_once(tmp_path):
    proc = command("char_lm", "--preset", "gpu", cwd=tmp_path)
    one_error_line("char_lm", proc.returncode, proc.stderr,
                   "device = 'cuda' but torch.cuda.is_available() is False",
                   "--set device=cpu")
    assert list(tmp_path.iterdir()) == [], "nothing is written, not even the checkpoint folder"


def test_a_missing_or_unreadable_corpus_is_named(tmp_path, capsys):
    proc = command("char_lm", "--set", f"corpus={tmp_path / 'nope.txt'}", cwd=tmp_path)
    one_error_line("char_lm", proc.returncode, proc.stderr,
                   f"corpus file not found: {tmp_path / 'nope.txt'}", "--set corpus=PATH")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 100)
    in_process("char_lm", ["--set", f"corpus={tmp_path / 'latin1.txt'}"], capsys,
               "corpus file is not UTF-8 text")
    (tmp_path / "empty.txt").write_text("")
    in_process("char_lm", ["--set", f"corpus={tmp_path / 'empty.txt'}"], capsys,
               "corpus file is empty")


def test_resuming_with_a_changed_config_is_refused_before_training(run_dir):
    before = files(run_dir)
    proc = command("char_lm", *settings(**TINY_GPT, ckpt_dir="ck", resume="true", lr=0.01),
                   cwd=run_dir.parent)
    one_error_line("char_lm", proc.returncode, proc.stderr,
                   "ck/latest.pt was written with a different config (lr: 0.003 -> 0.01)",
                   "resume with the same settings or use a new ckpt_dir")
    assert proc.stdout == "" and files(run_dir) == before


def test_resuming_past_steps_another_format_or_another_trainer_is_refused(run_dir, capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(run_dir.parent)
    before = files(run_dir)
    in_process("char_lm", settings(**{**TINY_GPT, "steps": 2}, ckpt_dir="ck", resume="true"),
               capsys, "ck/latest.pt is at step 3, past steps = 2")
    in_process("dpo", settings(**TINY_DPO, ckpt_dir="ck", resume="true"), capsys,
               "ck/latest.pt was written by another trainer")
    assert files(run_dir) == before
    state = load_checkpoint(run_dir / "latest.pt")
    save_checkpoint(run_dir / "latest.pt", {**state, "format": 0})
    in_process("char_lm", settings(**TINY_GPT, ckpt_dir="ck", resume="true"), capsys,
               "checkpoint format 0, expected 1; it was written by another version")


def test_a_loss_that_is_nan_from_the_start_blames_the_setting_not_the_lr(tmp_path):
    proc = command("dpo", *settings(**TINY_DPO, beta=1e308), cwd=tmp_path)
    line = one_error_line("dpo", proc.returncode, proc.stderr,
                          "loss became nan at step 0 (dpo)", "before any update",
                          "not the learning rate", "beta = 1e+308")
    assert "lower lr" not in line
    assert "dpo:" in proc.stderr, "the progress bar was drawn, then cleared for the message"


def test_a_loss_that_diverges_later_suggests_the_lr_and_names_the_settings():
    model = torch.nn.Linear(2, 1)
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        loss = m(batch).pow(2).mean()
        return (loss * math.nan if calls["n"] == 3 else loss), {}

    cfg = TrainConfig(steps=5, warmup_steps=0, progress=False, lr=0.5)
    with pytest.raises(FloatingPointError) as err:
        train(model, cfg, lambda gen: torch.ones(4, 2), loss_fn, desc="x")
    assert str(err.value) == ("loss became nan at step 2 (x); training diverged: try a lower lr "
                              "(now 0.5), or check the values set away from the defaults "
                              "(lr = 0.5, warmup_steps = 0)")


def test_other_named_failures_during_a_run_are_one_line(capsys):
    in_process("policy_gradient", ["--set", "env_id=CartPol-v9"], capsys,
               "env_id = 'CartPol-v9': unknown gymnasium environment")

    def raising(exc):
        def main():
            raise exc
        main.__module__ = "minimal.fake"
        return main

    for exc, status, says in [
        (RunError("a stage checkpoint cannot be resumed"), 2, "error: a stage checkpoint"),
        (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 5 GB"), 2,
         "error: out of CPU memory; lower batch_size or the model's size"),
        (KeyboardInterrupt(), 130, "interrupted; with ckpt_dir set, --set resume=true"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(raising(exc))
        lines = shown(capsys.readouterr().err)
        assert exit_info.value.code == status and len(lines) == 1
        assert lines[0].startswith("python -m minimal.fake: ") and says in lines[0], lines
    with pytest.raises(TypeError):  # a bug keeps its traceback
        run_cli(raising(TypeError("a bug")))


# -------------------------------------------------------------------- 8. --help
def test_help_lists_each_fields_range_and_each_presets_value(tmp_path):
    proc = command("char_lm", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("usage: python -m minimal.char_lm ") and "gpt.py" not in out
    assert "  lr (float > 0 and <= 1; laptop 0.003, gpu 0.001): peak AdamW" in out
    assert "  device (str, one of 'cpu', 'cuda', 'auto'; laptop 'cpu', gpu 'cuda'):" in out
    assert "  dropout (float >= 0 and < 1; laptop 0.0, gpu 0.1):" in out
    assert "  ckpt_dir (str or none; laptop None, gpu 'checkpoints/gpt'):" in out
    assert "True on the command line unless set" in out and "--overwrite" in out


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_help_text_of_every_config_shows_bounds_choices_and_presets(cls):
    lines = {line.split(" (", 1)[0].strip(): line for line in cls.help_text().splitlines()
             if line.startswith("  ")}
    for f in dataclasses.fields(cls):
        line = lines[f.name]
        for key, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if f.metadata.get(key) is not None:
                assert f"{sign} {f.metadata[key]}" in line, line
        for choice in f.metadata.get("choices") or ():
            assert repr(choice) in line, line
        for name, overrides in cls.all_presets().items():
            assert f"{name} {overrides.get(f.name, f.default)!r}" in line, line


# ----------------------------------------------------------------- 9. progress bars
CLI_TRAINERS = {module: overrides for module, _, _, overrides in TRAINERS}


def test_every_trainer_command_line_is_covered():
    assert sorted(CLI_TRAINERS) == command_line_modules()


@pytest.mark.parametrize("module", sorted(CLI_TRAINERS))
def test_every_trainer_command_line_shows_a_progress_bar_by_default(module, capsys, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(f"minimal.{module}")
    mod.main(settings(**CLI_TRAINERS[module]))
    err = capsys.readouterr().err
    assert re.search(r"\d+%\|", err), f"{module}: no progress bar on stderr: {err[-300:]!r}"


def test_progress_false_silences_the_bar_and_library_defaults_stay(capsys):
    from minimal import dpo

    assert dpo.DPOConfig().progress is False  # what notebooks and tests get
    assert dpo.DPOConfig.cli([]).progress is True  # what a terminal gets
    dpo.main(settings(**TINY_DPO, progress="false"))
    assert "%|" not in capsys.readouterr().err
