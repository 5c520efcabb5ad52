"""minimal: the readable implementations that accompany the book.

One module per idea.  Shared building blocks: :mod:`minimal.config` (presets,
validation, CLI), :mod:`minimal.train` (the training loop), :mod:`minimal.gpt`
(the tiny GPT), :mod:`minimal.seeding`.  Each chapter adds its own modules.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def asset_path(name: str) -> Path:
    """Path of a shipped data file: ``assets/`` in a checkout, ``minimal/assets`` when installed."""
    for folder in (_HERE.parent / "assets", _HERE / "assets"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"asset {name!r} not found in {_HERE.parent / 'assets'} "
                            f"or {_HERE / 'assets'}")
