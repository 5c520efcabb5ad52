"""The book builds strictly, offline, with a Colab button and install cell on every notebook."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
NOTEBOOKS = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if "_build" not in p.parts)


# tools/exercises.py reads the table of contents for the exercise index; the tests use the
# same reader rather than a second one (it is a script, so it is loaded from its path).
_spec = importlib.util.spec_from_file_location("exercises_tool", ROOT / "tools" / "exercises.py")
exercises_tool = importlib.util.module_from_spec(_spec)
sys.modules["exercises_tool"] = exercises_tool  # dataclasses look their module up there
_spec.loader.exec_module(exercises_tool)
# tools/colab_cell.py holds the notebooks' Colab install cell (and rewrites it); same loading.
_spec = importlib.util.spec_from_file_location("colab_cell_tool", ROOT / "tools" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_cell)


def toc_files() -> list[str]:
    """Every file the table of contents lists, chapters and their sections, in book order."""
    return [page for _, _, pages in exercises_tool.toc_chapters() for page in pages]


def test_every_notebook_is_in_the_toc():
    listed = toc_files()
    for nb in NOTEBOOKS:
        assert str(nb.relative_to(ROOT).with_suffix("")) in listed, f"{nb} is not in _toc.yml"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_the_colab_install_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    cells = nb["cells"]
    first = "".join(cells[0]["source"])
    # the cell tools/colab_cell.py writes: it installs the tagged release (v<version>) of the
    # repository _config.yml names, only inside Colab, and fails loudly (tests/test_packaging.py)
    # (nbval then runs every notebook top to bottom in a fresh kernel with only the README
    # install, so no notebook can depend on state left by another)
    assert colab_cell.first_cell_problem(nb) is None, (
        f"{nb_path.name}: {colab_cell.first_cell_problem(nb)}")
    assert '"google.colab" in sys.modules' in first
    assert f'url = f"git+{REPO_URL}@v{{BOOK_RELEASE}}"' in first, first
    assert "What you will learn" in "".join("".join(c["source"]) for c in cells[1:3])


def test_build_has_colab_buttons_and_offline_scripts(built_book):
    owner_repo = REPO_URL.removeprefix("https://github.com/")
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT)
        html = (built_book / rel.with_suffix(".html")).read_text()
        colab = f"https://colab.research.google.com/github/{owner_repo}/blob/main/{rel}"
        assert colab in html, f"no Colab button for {rel}"
    for page in built_book.rglob("*.html"):
        scripts = re.findall(r'<script[^>]*src="([^"]+)"', page.read_text())
        remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
        assert not remote, f"{page.name} loads scripts from the network: {remote}"
    assert (built_book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert (built_book / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert (built_book / "_static" / "widgets" / "embed-amd.js").is_file()


def test_citations_and_equations_render(built_book):
    intro = (built_book / "intro.html").read_text()
    assert "Sherry Yang" in (built_book / "bibliography.html").read_text() or "Yang" in intro
    howto = (built_book / "chapters" / "00_start" / "how_to_run.html").read_text()
    assert 'id="equation-attention"' in howto and 'id="equation-next-token-loss"' in howto
    assert "solution" in howto and "dropdown" in howto  # sphinx-exercise solutions are hidden


def test_nbval_checks_every_output_strictly():
    """The sanitizer masks only memory addresses and tqdm timings; no cell opts out, except
    the machine-dependent cells declared, with their reasons, in test_portable_outputs.py
    (which checks that exactly those carry the ``nbval-ignore-output`` tag)."""
    import configparser

    sanitize = configparser.ConfigParser()
    sanitize.read(ROOT / "tests" / "sanitize.cfg")
    assert set(sanitize.sections()) == {"memory-addresses", "tqdm-rate"}
    assert sanitize["memory-addresses"]["regex"] == "0x[0-9a-fA-F]{6,16}"
    assert "it/s" in sanitize["tqdm-rate"]["regex"]
    for nb in NOTEBOOKS:
        text = nb.read_text()
        for marker in ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "nbval-skip", "raises-exception"):
            assert marker not in text, f"{nb.name} uses {marker}"


def test_the_suite_is_offline_in_process_and_in_subprocesses():
    import socket

    with pytest.raises(RuntimeError, match="the test suite is offline"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    child = subprocess.run([sys.executable, "-c",
                            "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"],
                           capture_output=True, text=True)
    assert child.returncode != 0 and "the test suite is offline" in child.stderr
