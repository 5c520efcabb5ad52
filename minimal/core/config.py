"""Trainer configs: dataclasses with named presets, validation and a command line.

Every trainer in ``minimal/`` describes its hyperparameters as a dataclass that
inherits from :class:`Config` (usually through :class:`TrainConfig`, the fields
of the shared training loop in :mod:`minimal.core.train`).  Three habits follow:

* **Presets.**  ``laptop`` (the default: CPU, seconds to under a minute) is the
  field defaults themselves; ``gpu`` (CUDA, bf16, bigger model and data,
  checkpoints) is a named dictionary of overrides in the class's ``presets``, so one
  readable module serves both scales::

      cfg = CharLMConfig.from_preset("gpu", steps=10)

* **Validation.**  Each field is declared with :func:`param`, which records a
  docstring and the allowed range or choices.  Bad input raises
  :class:`ConfigError` naming the config, the field and the value; nothing is
  silently clipped or ignored.

* **Command line.**  ``python -m minimal.<module> --preset gpu --set lr=1e-3
  steps=500`` builds the config with :meth:`Config.cli`.  An unknown preset,
  unknown key, wrong type or out-of-range value exits with a clear message.
  Before any training the command line also runs :meth:`Config.preflight`, the
  checks a config cannot make on its own values (is ``ckpt_dir`` writable, does
  it already hold checkpoints, is the GPU there, does the corpus exist); a problem
  there is a :class:`RunError`.  A ``ckpt_dir`` that already holds checkpoints is
  refused unless ``--set resume=true`` continues them or ``--overwrite`` (a flag,
  not a field) lets the new run replace them.  Each module's ``if __name__ == "__main__":``
  block calls :func:`run_cli`, which turns these errors, and a loss that becomes
  NaN mid-run, into one line ``python -m minimal.<module>: error: ...`` and exit
  status 2 instead of a traceback.  On the command line ``progress`` is on unless
  ``--set progress=false``; library calls keep each config's own default.

Introduced in the front matter ("How to run the code").
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import math
import os
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar


class ConfigError(ValueError):
    """A config value, key or preset that is not allowed.  The message names it."""


class RunError(ValueError):
    """A problem outside the config's own values: a ``ckpt_dir`` that cannot be written or
    already holds checkpoints, a checkpoint that cannot be read or resumed, an absent GPU, a
    missing data file.  The message names it and says what to do.  A ``ValueError``, so code
    that catches those keeps working."""


def param(default: Any, doc: str, *, gt=None, ge=None, lt=None, le=None, choices=None):
    """Declare a config field with its docstring and allowed values.

    ``gt``/``ge``/``lt``/``le`` bound numbers (exclusive/inclusive); ``choices``
    lists the allowed values.  The metadata is read by :meth:`Config.validate`
    and printed by ``--help``.
    """
    meta = {"doc": doc, "gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices}
    return field(default=default, metadata=meta)


def _base_type(tp) -> tuple[type, bool]:
    """Return (scalar type, optional?) for an annotation such as ``int | None``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported config annotation {tp!r}")
        return inner[0], True
    return tp, False


def _parse_text(text: str, tp: type, optional: bool):
    """Turn the text of ``--set key=value`` into a value of type ``tp``."""
    if optional and text.lower() == "none":
        return None
    if tp is bool:
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    return tp(text)


@dataclass
class Config:
    """Base class: presets, validation, and the command line.

    Subclasses declare fields with :func:`param`; the field defaults *are* the
    ``laptop`` preset, the default everywhere (``Cls() == Cls.from_preset("laptop")``).
    Other presets (``gpu``) go in the ``presets`` class attribute, as overrides of the
    defaults.  Cross-field rules go in :meth:`check`.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {}  # presets beyond laptop: name -> overrides

    def __post_init__(self):
        self.validate()

    # ----------------------------------------------------------------- build
    @classmethod
    def redefault(cls, name: str, value: Any, doc: str | None = None):
        """Field ``name`` as ``cls`` declares it (type, bounds), with another default.

        The one way a subclass changes an inherited field: it makes its laptop settings
        the field defaults, so that ``Sub() == Sub.from_preset("laptop")``, and may say
        what the field means for it (``doc``) without restating the bounds::

            steps: int = TrainConfig.redefault("steps", 1000)
            batch_size: int = TrainConfig.redefault("batch_size", 64, doc="pairs per step")
        """
        meta = dict(cls.__dataclass_fields__[name].metadata)
        if doc is not None:
            meta["doc"] = doc
        return field(default=value, metadata=meta)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def all_presets(cls) -> dict[str, dict[str, Any]]:
        """Every preset by name, ``laptop`` (the field defaults, no overrides) first."""
        return {"laptop": {}, **cls.presets}

    @classmethod
    def from_preset(cls, preset: str = "laptop", **overrides) -> "Config":
        """The named preset with ``overrides`` applied on top, validated."""
        presets = cls.all_presets()
        if preset not in presets:
            raise ConfigError(
                f"{cls.__name__}: unknown preset {preset!r}; "
                f"choose one of {sorted(presets)}"
            )
        values = {**presets[preset], **overrides}
        for key in values:
            cls._require_known(key)
        return cls(**values)

    @classmethod
    def _require_known(cls, key: str) -> None:
        names = cls.field_names()
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{cls.__name__}: unknown field {key!r}{hint}; known fields: {', '.join(names)}"
            )

    def replace(self, **overrides) -> "Config":
        """A validated copy with some fields changed."""
        for key in overrides:
            self._require_known(key)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -------------------------------------------------------------- validate
    def validate(self) -> None:
        """Check every field's type and range, then the cross-field rules."""
        hints = typing.get_type_hints(type(self))
        name = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            tp, optional = _base_type(hints[f.name])
            where = f"{name}.{f.name} = {value!r}"
            if value is None:
                if not optional:
                    raise ConfigError(f"{where}: a value is required")
                continue
            if tp is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # 1 is an acceptable learning-rate spelling
                object.__setattr__(self, f.name, value)
            ok = isinstance(value, tp) and not (tp is not bool and isinstance(value, bool))
            if not ok:
                raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
            if tp is float and not math.isfinite(value):  # nan passes no comparison, inf many
                raise ConfigError(f"{where}: must be a finite number")
            meta = f.metadata
            if meta.get("choices") is not None and value not in meta["choices"]:
                raise ConfigError(f"{where}: must be one of {list(meta['choices'])}")
            for key, test, words in (
                ("gt", lambda v, b: v > b, "greater than"),
                ("ge", lambda v, b: v >= b, "at least"),
                ("lt", lambda v, b: v < b, "less than"),
                ("le", lambda v, b: v <= b, "at most"),
            ):
                bound = meta.get(key)
                if bound is not None and not test(value, bound):
                    raise ConfigError(f"{where}: must be {words} {bound}")
        self.check()

    def check(self) -> None:
        """Cross-field rules; subclasses raise :class:`ConfigError` here."""

    def fail(self, message: str) -> None:
        """Raise a :class:`ConfigError` prefixed with this config's name."""
        raise ConfigError(f"{type(self).__name__}: {message}")

    # ------------------------------------------------------------------- CLI
    #: Values the command line uses unless ``--set`` gives others (on top of the preset);
    #: library calls from notebooks and tests keep the field defaults.
    cli_defaults: ClassVar[dict[str, Any]] = {}

    def preflight(self, overwrite: bool = False) -> None:
        """Check what the values alone cannot show (files, folders, the device) before any
        training; raise :class:`RunError`.  The command line runs it; subclasses add checks.
        ``overwrite`` is the command line's ``--overwrite`` flag."""

    @classmethod
    def prog(cls) -> str:
        """How this config's command line is typed: ``python -m minimal.<module>``."""
        return f"python -m {_module_name(cls.__module__)}"

    @classmethod
    def help_text(cls) -> str:
        """Every field with its type, its allowed values and its value in each preset."""
        lines = ["fields (set with --set key=value): type and allowed values; value in each preset"]
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp, optional = _base_type(hints[f.name])
            kind = tp.__name__ + (" or none" if optional else "") + _allowed_text(f.metadata)
            values = ", ".join(f"{name} {overrides.get(f.name, f.default)!r}"
                               for name, overrides in cls.all_presets().items())
            if f.name in cls.cli_defaults:
                values += f"; {cls.cli_defaults[f.name]!r} on the command line unless set"
            lines.append(f"  {f.name} ({kind}; {values}): {f.metadata.get('doc', '')}")
        lines.append(f"presets: {', '.join(cls.all_presets())} (--preset NAME; laptop is the default)")
        return "\n".join(lines)

    @classmethod
    def cli(cls, argv: list[str] | None = None, description: str | None = None) -> "Config":
        """Parse ``--preset NAME --set key=value ...`` and run :meth:`preflight`.

        Bad input exits with status 2: a malformed command line with argparse's usage and
        error, a value, preset or surrounding that is not allowed with one line
        ``python -m minimal.<module>: error: <what and what to do>``.
        """
        parser = argparse.ArgumentParser(
            prog=cls.prog(),
            description=inspect.cleandoc(description or cls.__doc__ or "").replace("``", "'"),
            epilog=cls.help_text(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--preset", default="laptop", help=f"one of {sorted(cls.all_presets())}")
        parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                            help="override config fields, e.g. --set lr=1e-3 steps=200")
        if "ckpt_dir" in cls.field_names():
            parser.add_argument("--overwrite", action="store_true",
                                help="let a new run overwrite the checkpoints already in "
                                     "ckpt_dir (without it the run refuses to start; "
                                     "--set resume=true continues them instead)")
        args = parser.parse_args(argv)

        def fail(message: str):
            parser.exit(2, f"{parser.prog}: error: {_one_line(message)}\n")

        hints = typing.get_type_hints(cls)
        overrides: dict[str, Any] = {}
        for item in args.set:
            key, sep, text = item.partition("=")
            if not sep:
                parser.error(f"--set expects KEY=VALUE, got {item!r}")
            try:
                cls._require_known(key)
                tp, optional = _base_type(hints[key])
                overrides[key] = _parse_text(text, tp, optional)
            except ConfigError as exc:
                fail(str(exc))
            except ValueError as exc:
                fail(f"{cls.__name__}.{key}: cannot read {text!r} as {tp.__name__} ({exc})")
        try:
            cfg = cls.from_preset(args.preset, **{**cls.cli_defaults, **overrides})
            cfg.preflight(overwrite=getattr(args, "overwrite", False))
        except (ConfigError, RunError) as exc:
            fail(str(exc))
        return cfg


def _allowed_text(meta) -> str:
    """The bounds and choices :func:`param` recorded, as ``--help`` prints them."""
    if meta.get("choices") is not None:
        return ", one of " + ", ".join(repr(c) for c in meta["choices"])
    bounds = [f"{sign} {meta[key]}" for key, sign in
              (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if meta.get(key) is not None]
    return " " + " and ".join(bounds) if bounds else ""


def _module_name(module: str) -> str:
    """A module's dotted name, also for the one ``python -m`` runs (it is called ``__main__``)."""
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        return spec.name if spec is not None else f"minimal.{Path(sys.argv[0]).stem}"
    return module


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


@dataclass
class TrainConfig(Config):
    """Fields of the shared training loop (:func:`minimal.core.train.train`)."""

    seed: int = param(0, "seed for parameters, data order and sampling", ge=0)
    device: str = param("cpu", "where to train; 'auto' picks CUDA when present",
                        choices=("cpu", "cuda", "auto"))
    dtype: str = param("float32", "compute dtype; bfloat16 runs the forward pass under autocast",
                       choices=("float32", "bfloat16"))
    steps: int = param(300, "optimizer steps", gt=0)
    batch_size: int = param(32, "examples per step", gt=0)
    lr: float = param(3e-3, "peak AdamW learning rate (typical 1e-4 to 1e-2)", gt=0, le=1)
    weight_decay: float = param(0.01, "AdamW weight decay on weight matrices (0 to 0.1)", ge=0, lt=1)
    warmup_steps: int = param(20, "linear warm-up steps before cosine decay", ge=0)
    min_lr_ratio: float = param(0.1, "final LR as a fraction of lr", ge=0, le=1)
    grad_clip: float = param(1.0, "clip the global grad norm to this (0 disables)", ge=0)
    log_every: int = param(10, "record metrics every this many steps", gt=0)
    ckpt_dir: str | None = param(None, "folder for checkpoints; none disables them")
    ckpt_every: int = param(100, "write a checkpoint every this many steps", gt=0)
    resume: bool = param(False, "continue from ckpt_dir/latest.pt if it exists")
    progress: bool = param(True, "show a tqdm progress bar")
    compile: bool = param(False, "torch.compile the model before training (opt-in; pays off "
                          "on a GPU, costs a compile on the first steps)")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16"},
    }
    # A run started from a terminal shows its progress bar (--set progress=false hides it).
    cli_defaults: ClassVar[dict[str, Any]] = {"progress": True}

    def preflight(self, overwrite: bool = False) -> None:
        """The device, ``ckpt_dir`` and the checkpoints in it: :func:`minimal.core.train.preflight`."""
        from minimal.core.train import preflight  # imported here: this module does not need torch

        preflight(self, overwrite)

    def check(self) -> None:
        if self.warmup_steps > self.steps:
            self.fail(f"warmup_steps = {self.warmup_steps} exceeds steps = {self.steps}")
        if self.resume and self.ckpt_dir is None:
            self.fail("resume = True needs ckpt_dir")

    def stage_checkpoints(self, name: str) -> dict[str, Any]:
        """Checkpoint settings for one stage of this run (a warm-up, a reward model, one
        of several fits): its own folder ``ckpt_dir/name``, written and resumed with the
        run, so that resuming a killed run does not redo a stage that had finished."""
        ckpt_dir = None if self.ckpt_dir is None else f"{self.ckpt_dir}/{name}"
        return {"ckpt_dir": ckpt_dir, "ckpt_every": self.ckpt_every, "resume": self.resume}

    RUN_FIELDS: ClassVar[tuple[str, ...]] = ("seed", "device", "dtype", "progress")

    def stage_config(self, cls: type[TrainConfig], stage: str, shared: tuple[str, ...] = (),
                     preset: str = "laptop", **overrides) -> TrainConfig:
        """The config of a stage this run drives (a warm-up, a reward model), in one place.

        ``cls``'s ``preset``, with this run's :data:`RUN_FIELDS` (seed, device, dtype,
        progress), the task fields named in ``shared`` copied from this config, the
        stage's checkpoints (:meth:`stage_checkpoints`), then ``overrides`` (the fields
        whose names differ, e.g. ``steps=self.rm_steps``).  Nothing else is copied: the
        stage keeps its own optimizer settings.
        """
        values = {k: getattr(self, k) for k in (*self.RUN_FIELDS, *shared)}
        return cls.from_preset(preset, **values, **self.stage_checkpoints(stage), **overrides)


# ------------------------------------------------------------- running a command
CLI_THREADS = 1  # torch CPU threads of every command-line run (see run_cli)


def run_cli(main: Callable[[], Any]) -> None:
    """Run a trainer's ``main()`` as a command; every module's ``__main__`` block calls this.

    Problems the code names, when they surface after the command line was read (a stage's
    checkpoint that cannot be resumed, a loss that stops being finite, memory that runs
    out), print one line ``python -m minimal.<module>: error: <message>`` on stderr and
    exit with status 2; Ctrl-C prints one line and exits with 130.  Under ``torchrun`` only
    rank 0's stdout is shown (every rank computes the same summary).  Anything else is a bug
    and keeps its traceback.  Called from Python, ``main(argv)`` raises as usual.

    A command runs torch on ``CLI_THREADS`` CPU thread(s): the book's models are tiny, so
    a second thread saves little on an idle machine and costs several times over on a busy
    one, and one thread gives the same numbers whatever the core count
    (``benchmarks/threads.md``).  Library calls keep the caller's setting.
    """
    import torch  # here, not at the top: the config classes themselves need no torch

    torch.set_num_threads(CLI_THREADS)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) != 0:
        sys.stdout = open(os.devnull, "w")  # under torchrun only rank 0 prints; errors still show
    try:
        main()
        return
    except (ConfigError, RunError, FloatingPointError) as exc:
        message, status = f"error: {exc}", 2
    except (MemoryError, RuntimeError) as exc:  # torch reports exhausted memory as RuntimeError
        text = str(exc)
        if isinstance(exc, RuntimeError) and not ("out of memory" in text.lower()
                                                  or "DefaultCPUAllocator" in text):
            raise
        where = "GPU" if "CUDA" in text else "CPU"
        message, status = f"error: out of {where} memory; lower batch_size or the model's size", 2
    except KeyboardInterrupt:
        message, status = ("interrupted; with ckpt_dir set, --set resume=true continues from "
                           "the last checkpoint"), 130
    # Past the except clause the failed run's frames are gone, and with them its progress
    # bar, which has cleared its line: the message is then the last thing on the terminal.
    prog = f"python -m {_module_name(getattr(main, '__module__', '__main__'))}"
    print(f"{prog}: {_one_line(message)}", file=sys.stderr)
    sys.exit(status)


def command_line_modules() -> list[str]:
    """The modules of ``minimal`` that have a command line (a ``main`` function)."""
    here = Path(__file__).resolve().parent.parent  # minimal/: the trainers live at its top level
    return sorted(p.stem for p in here.glob("*.py")
                  if not p.stem.startswith("_") and "\ndef main(" in p.read_text(encoding="utf-8"))


def no_command_line(module: str) -> None:
    """``python -m`` of a library-only module: one line naming the ones to run, exit 2."""
    print(f"python -m {module}: error: {module} is a library module without a command line; "
          f"the modules with one are {', '.join(command_line_modules())} "
          "(python -m minimal.<module> --help)", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    no_command_line(__spec__.name)
