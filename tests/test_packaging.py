"""Packaging: one dependency list with floors, a version that changes per release, the Colab cell.

The floors themselves are proven by tools/floors.py (`make floors`, run by .ci/run); these
tests check the pieces it relies on and how the install cell behaves, without installing.
"""

import difflib
import importlib.util
import io
import json
import re
import subprocess
import sys
import tomllib
import types
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

import minimal

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

_spec = importlib.util.spec_from_file_location("colab_cell_tool", ROOT / "tools" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_cell)


def test_every_runtime_dependency_is_a_floor_and_listed_once():
    deps = PYPROJECT["project"]["dependencies"]
    names = [re.fullmatch(r"([A-Za-z0-9._-]+)>=[0-9][0-9A-Za-z.]*", d)[1] for d in deps]
    assert sorted(names) == ["gymnasium", "ipywidgets", "matplotlib", "numpy", "torch", "tqdm"]
    # requirements.txt points at the package instead of repeating its list
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    assert lines == ["-e ."]


def test_the_floors_stay_low_enough_for_colab():
    """Colab's long-time ipywidgets is 7.7.1 and its torch a recent 2.x: a floor above them would
    make the install cell replace Colab's own packages."""
    floors = dict(re.fullmatch(r"([A-Za-z0-9._-]+)>=(.+)", d).groups()
                  for d in PYPROJECT["project"]["dependencies"])
    assert tuple(map(int, floors["ipywidgets"].split("."))) <= (7, 7, 1)
    assert tuple(map(int, floors["torch"].split("."))) <= (2, 6)
    assert tuple(map(int, floors["gymnasium"].split("."))) >= (1, 1)  # gymnasium.vector.AutoresetMode


def test_license_is_an_spdx_string_and_setuptools_reads_it():
    assert PYPROJECT["project"]["license"] == "MIT"
    (req,) = PYPROJECT["build-system"]["requires"]
    low, high = re.fullmatch(r"setuptools>=(\d+),<(\d+)", req).groups()
    assert int(low) >= 77 and int(high) > int(low)  # SPDX `license` needs setuptools 77


def test_version_matches_pyproject_in_a_checkout():
    assert minimal.__version__ == PYPROJECT["project"]["version"] == colab_cell.project_version()


def test_the_install_cell_comes_from_the_config_and_installs_the_release_tag():
    source = colab_cell.cell_source()
    url = colab_cell.repository_url()
    assert url.startswith("https://github.com/")
    assert f'url = f"git+{url}@v{{BOOK_RELEASE}}"' in source
    assert f'BOOK_RELEASE = "{minimal.__version__}"' in source
    assert "".join(colab_cell.source_lines(source)) == source


def run_cell(monkeypatch, *, in_colab: bool, pip_returncode: int = 0, loaded_version=None):
    """Execute the cell with subprocess.run and the imported `minimal` replaced by fakes."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, pip_returncode, "", "ERROR: boom from pip\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    fake = types.ModuleType("minimal")
    if loaded_version is not None:
        fake.__version__ = loaded_version
    monkeypatch.setitem(sys.modules, "minimal", fake)
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile(colab_cell.cell_source(), "install cell", "exec"), {})
    return calls, out.getvalue()


def test_the_cell_does_nothing_outside_colab(monkeypatch):
    calls, printed = run_cell(monkeypatch, in_colab=False)
    assert calls == [] and printed == ""


def test_the_cell_installs_with_this_python_and_checks_the_version(monkeypatch):
    calls, printed = run_cell(monkeypatch, in_colab=True, loaded_version=minimal.__version__)
    (cmd,) = calls
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == f"git+{colab_cell.repository_url()}@v{minimal.__version__}"
    assert printed == ""


def test_a_failed_install_stops_run_all_with_pips_message(monkeypatch):
    with pytest.raises(RuntimeError, match=r"(?s)failed \(pip exit code 1\).*boom from pip"):
        run_cell(monkeypatch, in_colab=True, pip_returncode=1, loaded_version=minimal.__version__)


@pytest.mark.parametrize("loaded", [None, "0.0.1"], ids=["release without __version__", "older"])
def test_an_older_imported_minimal_asks_for_a_restart(monkeypatch, loaded):
    with pytest.raises(RuntimeError, match="Restart session"):
        run_cell(monkeypatch, in_colab=True, loaded_version=loaded)


def test_the_rewrite_changes_only_the_first_cells_source(tmp_path):
    nb_path = ROOT / "chapters" / "06_in_context_decisions" / "bandits_and_regret.ipynb"
    original = nb_path.read_text(encoding="utf-8")
    nb = json.loads(original)
    ascii_layout = colab_cell._dump(nb, True) == original
    nb["cells"][0]["source"] = ["# an outdated install cell\n", "import sys"]
    stale = colab_cell._dump(nb, ascii_layout)
    copy = tmp_path / nb_path.name
    copy.write_text(stale, encoding="utf-8")

    text = colab_cell.rewritten(copy)
    new = json.loads(text)
    assert new["cells"][0]["source"] == colab_cell.source_lines(colab_cell.cell_source())
    nb["cells"][0]["source"] = new["cells"][0]["source"]
    assert new == nb  # nothing else changed ...
    assert text == colab_cell._dump(new, ascii_layout)  # ... nor the JSON layout
    # as a diff: only lines inside the first cell's "source": [ ... ] change
    old_lines = stale.splitlines()
    start = old_lines.index('   "source": [')
    end = old_lines.index("   ]", start)
    edits = [op for op in difflib.SequenceMatcher(None, old_lines, text.splitlines()).get_opcodes()
             if op[0] != "equal"]
    assert edits and all(start < i1 <= i2 <= end for _, i1, i2, _, _ in edits), edits
    copy.write_text(text, encoding="utf-8")
    assert colab_cell.rewritten(copy) is None  # idempotent


def test_the_rewrite_refuses_a_notebook_in_another_layout(tmp_path):
    copy = tmp_path / "other.ipynb"
    copy.write_text(json.dumps({"cells": [{"cell_type": "code", "source": []}]}, indent=2))
    with pytest.raises(SystemExit, match="layout"):
        colab_cell.rewritten(copy)


def test_citation_file_is_valid_and_follows_the_one_repository_setting():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # the fields the Citation File Format 1.2.0 requires, with their types
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"].strip()
    assert isinstance(cff["title"], str) and cff["title"].strip()
    assert cff["authors"] and all(("name" in a) or ("family-names" in a) for a in cff["authors"])
    assert cff.get("type", "software") in ("software", "dataset")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))
    assert cff["repository-code"] == colab_cell.repository_url()
    assert cff["version"] == colab_cell.project_version()
    assert colab_cell.citation_text() == (ROOT / "CITATION.cff").read_text()
