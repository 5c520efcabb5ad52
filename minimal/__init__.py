"""minimal: the readable implementations that accompany the book.

One module per idea.  Shared building blocks: :mod:`minimal.config` (presets,
validation, CLI), :mod:`minimal.train` (the training loop), :mod:`minimal.gpt`
(the tiny GPT), :mod:`minimal.seeding`.  Each chapter adds its own modules.
"""

import re
from importlib.metadata import version as _installed_version
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _version() -> str:
    """This code's release: pyproject.toml's in a source checkout, else the installed package's.

    The checkout comes first so that an editable or stale install elsewhere cannot misreport
    the code that was actually imported; the notebooks' Colab cell compares it with the
    release it installed (``tools/colab_cell.py``).
    """
    pyproject = _HERE.parent / "pyproject.toml"
    if pyproject.is_file():
        found = re.search(r'^name = "rl-lm-book-minimal"$.*?^version = "([^"]+)"$',
                          pyproject.read_text(), re.M | re.S)
        if found:
            return found.group(1)
    return _installed_version("rl-lm-book-minimal")


__version__ = _version()


def asset_path(name: str) -> Path:
    """Path of a shipped data file: ``assets/`` in a checkout, ``minimal/assets`` when installed."""
    for folder in (_HERE.parent / "assets", _HERE / "assets"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"asset {name!r} not found in {_HERE.parent / 'assets'} "
                            f"or {_HERE / 'assets'}")
