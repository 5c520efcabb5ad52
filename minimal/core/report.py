"""Printing numbers that are the same on every machine.

A value at machine precision (a Bellman residual of 2e-15, a difference that is
exactly zero on one processor and 1e-16 on another) depends on which kernels the
linear-algebra library picks for the processor, so a notebook that prints it is
not reproducible.  The reader needs the bound the computation guarantees, not the
rounding noise: print ``< 1e-12`` instead.  ``tests/test_portable_outputs.py``
scans every notebook's stored outputs for printed noise.
"""

from __future__ import annotations

import math


def below(value: float, limit: float) -> str:
    """``'< limit'`` when ``|value| < limit``, else the value itself (which is then news).

    >>> below(2.2e-15, 1e-12)
    '< 1e-12'
    >>> below(0.003, 1e-12)
    '= 0.003 (not below 1e-12)'
    """
    if not math.isfinite(value):
        return f"= {value} (not finite)"
    if abs(value) < limit:
        return f"< {limit:.0e}"
    return f"= {value:.2g} (not below {limit:.0e})"


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
