"""The equation tests can fail: every one-line change to a key equation breaks them.

``tools/mutate.py`` lists one-line mutations of the key equations (a term dropped, a sign
flipped, a clip side swapped, a coefficient ignored) and runs ``pytest -m unit`` on the
equation tests with each one in place, in a copy of the checkout.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutate)


@pytest.mark.unit
def test_every_mutation_still_applies_to_the_code():
    for path, old, new, what in mutate.MUTATIONS:
        assert old != new, what
        assert mutate.applies(path, old), f"{what}: {path} no longer holds {old!r}; update tools/mutate.py"


def test_every_mutation_of_a_key_equation_fails_the_unit_tests(capsys):
    code = mutate.main()
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(mutate.MUTATIONS)} of {len(mutate.MUTATIONS)} mutations caught" in out
