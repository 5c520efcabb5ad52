# Two set-up commands (README): `make book` builds the HTML book, `make test` runs the whole suite.
# Each creates .venv on first use and installs what it needs; only Python 3.11+ and pip are assumed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Pinned here, not in pyproject.toml (which holds the package's dependencies, as floors): on the
# reference machine torch==2.13.0 is a local CPU wheel, while an unpinned torch would pull several
# GB of CUDA packages.  Colab keeps its own.
TORCH  ?= torch==2.13.0

# The browser tests drive Debian's Chromium (never a browser that Playwright downloads).
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book pdf test unit lint mutate floors timings notebooks bench clean chromium

$(STAMP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)" -e . -r requirements-dev.txt
	touch $(STAMP)

book: $(STAMP)  ## build the HTML book into _build/html (renders committed outputs)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Book built: open $(CURDIR)/_build/html/index.html"

pdf: $(STAMP) chromium  ## the whole book as one PDF, solutions in an appendix (NO_SOLUTIONS=1 leaves them out)
	$(BIN)/python tools/pdf.py $(if $(NO_SOLUTIONS),--no-solutions)

test: $(STAMP) chromium  ## lint, then unit, claim and browser tests, strict nbval of every notebook, strict build
	$(BIN)/ruff check .
	$(BIN)/actionlint
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff (configuration: [tool.ruff] in pyproject.toml) and actionlint (.github/workflows)
	$(BIN)/ruff check .
	$(BIN)/actionlint

unit: $(STAMP)  ## the fast unit tests that pin every key equation (pytest -m unit, seconds)
	$(BIN)/python -m pytest -m unit tests

mutate: $(STAMP)  ## one-line changes to each key equation must fail the unit tests (tools/mutate.py)
	$(BIN)/python tools/mutate.py

floors:  ## the oldest allowed dependencies and the Colab install cell, in a fresh temporary venv
	$(PYTHON) tools/floors.py

chromium:  ## Debian's Chromium for tests/test_browser.py, installed once if missing
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

timings: $(STAMP)  ## execute every notebook on this machine; write benchmarks/notebook_times.*
	$(BIN)/python tools/notebooks.py time

notebooks: $(STAMP)  ## re-execute every notebook and save its outputs (then commit them)
	$(BIN)/python tools/notebooks.py run

bench: $(STAMP)  ## side-by-side benchmarks against reference libraries (benchmark-only deps)
	$(BIN)/python -m pip install -q "$(TORCH)" -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/ppo_vs_sb3.py --seeds 0 1 2 3 4 --out benchmarks/ppo_vs_sb3.md
	$(BIN)/python benchmarks/gpt_throughput.py --out benchmarks/gpt_throughput.md
	$(BIN)/python benchmarks/dpo_vs_trl.py --out benchmarks/dpo_vs_trl
	$(BIN)/python benchmarks/grpo_vs_trl.py

clean:
	rm -rf _build .pytest_cache
