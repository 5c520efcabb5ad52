#!/usr/bin/env bash
# Every gpu preset for a bounded slice on one CUDA GPU (8 minutes at most on an
# H100/H200-class GPU); writes benchmarks/gpu.md.  Without CUDA: one line, exit status 2.
# Settings and what is measured: benchmarks/gpu_check.py's docstring.
#   bash benchmarks/gpu_check.sh            # all presets
#   bash benchmarks/gpu_check.sh char_lm    # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PYTHON" benchmarks/gpu_check.py "$@"
