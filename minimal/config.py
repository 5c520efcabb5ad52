"""Trainer configs: dataclasses with named presets, validation and a command line.

Every trainer in ``minimal/`` describes its hyperparameters as a dataclass that
inherits from :class:`Config` (usually through :class:`TrainConfig`, the fields
of the shared training loop in :mod:`minimal.train`).  Three habits follow:

* **Presets.**  ``laptop`` (the default: CPU, seconds to under a minute) and ``gpu``
  (CUDA, bf16, bigger model and data, checkpoints) are named dictionaries of
  overrides, so one readable module serves both scales::

      cfg = CharLMConfig.from_preset("gpu", steps=10)

* **Validation.**  Each field is declared with :func:`param`, which records a
  docstring and the allowed range or choices.  Bad input raises
  :class:`ConfigError` naming the config, the field and the value; nothing is
  silently clipped or ignored.

* **Command line.**  ``python -m minimal.<module> --preset gpu --set lr=1e-3
  steps=500`` builds the config with :meth:`Config.cli`.  An unknown preset,
  unknown key, wrong type or out-of-range value exits with a clear message.

Introduced in the front matter ("How to run the code").
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A config value, key or preset that is not allowed.  The message names it."""


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

    Subclasses declare fields with :func:`param` and a ``presets`` class
    attribute mapping preset names to overrides.  ``laptop`` must exist and is
    the default.  Cross-field rules go in :meth:`check`.
    """

    presets: ClassVar[dict[str, dict[str, Any]]] = {"laptop": {}}

    def __post_init__(self):
        self.validate()

    # ----------------------------------------------------------------- build
    @classmethod
    def redefault(cls, name: str, value: Any):
        """Field ``name`` as ``cls`` declares it (type, doc, bounds), with another default.

        A subclass uses it to make its laptop settings the field defaults, so that
        ``Sub() == Sub.from_preset("laptop")``::

            steps: int = TrainConfig.redefault("steps", 1000)
        """
        return field(default=value, metadata=cls.__dataclass_fields__[name].metadata)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_preset(cls, preset: str = "laptop", **overrides) -> "Config":
        """The named preset with ``overrides`` applied on top, validated."""
        if preset not in cls.presets:
            raise ConfigError(
                f"{cls.__name__}: unknown preset {preset!r}; "
                f"choose one of {sorted(cls.presets)}"
            )
        values = {**cls.presets[preset], **overrides}
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
    @classmethod
    def help_text(cls) -> str:
        lines = ["fields (set with --set key=value):"]
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp, optional = _base_type(hints[f.name])
            kind = tp.__name__ + (" or none" if optional else "")
            lines.append(f"  {f.name} ({kind}, default {f.default!r}): {f.metadata.get('doc', '')}")
        lines.append("presets: " + ", ".join(f"{k} {v}" for k, v in cls.presets.items()))
        return "\n".join(lines)

    @classmethod
    def cli(cls, argv: list[str] | None = None, description: str | None = None) -> "Config":
        """Parse ``--preset NAME --set key=value ...``; exit with a message on bad input."""
        parser = argparse.ArgumentParser(
            description=description or cls.__doc__,
            epilog=cls.help_text(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--preset", default="laptop", help=f"one of {sorted(cls.presets)}")
        parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                            help="override config fields, e.g. --set lr=1e-3 steps=200")
        args = parser.parse_args(argv)
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
                parser.error(str(exc))
            except ValueError as exc:
                parser.error(f"{cls.__name__}.{key}: cannot read {text!r} as {tp.__name__} ({exc})")
        try:
            return cls.from_preset(args.preset, **overrides)
        except ConfigError as exc:
            parser.error(str(exc))


@dataclass
class TrainConfig(Config):
    """Fields of the shared training loop (:func:`minimal.train.train`)."""

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

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "laptop": {},
        "gpu": {"device": "cuda", "dtype": "bfloat16"},
    }

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
