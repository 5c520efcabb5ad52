"""The first code cell of every notebook: installs the book's code when run in Google Colab.

    python tools/colab_cell.py show     # print the cell's source
    python tools/colab_cell.py check    # exit 1 if a notebook's first cell is not current
    python tools/colab_cell.py write    # rewrite the first cell of every notebook in chapters/
                                        # (and CITATION.cff's repository-code and version)

The cell is written here and nowhere else.  It installs the tagged release ``v<version>``
(``version`` from pyproject.toml) of the repository named in _config.yml's
``repository.url``, so a runtime that holds an older release is upgraded rather than keeping
stale code, and the code a notebook runs is the code its outputs were made with.  A failed pip
install stops "Run all" with pip's messages, and so does an already imported older ``minimal``
(the student is told to restart the runtime).  Outside Colab the cell only imports ``sys`` and
prints nothing, so nbval re-executes it with no output.  pip's default upgrade strategy
(only-if-needed) keeps every preinstalled package that satisfies pyproject's floors.

Releasing: bump ``version`` in pyproject.toml, run ``write``, commit, then tag that commit
``v<version>`` and push the tag (``git tag v0.3.0 && git push origin v0.3.0``): until the tag
exists on the repository, the cell fails (loudly) in Colab.

``write`` changes only the ``source`` field of each notebook's first cell and writes the file
back with the notebook's own JSON layout (indent 1, as nbformat writes it); a notebook that the
round trip would change anywhere else is refused and left untouched.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

TEMPLATE = '''\
# Running in Google Colab? Install the book's code first (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import importlib
    import subprocess

    BOOK_RELEASE = "{version}"  # the release of the book's code these outputs come from
    url = f"git+{repo_url}@v{{BOOK_RELEASE}}"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", url],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        raise RuntimeError(f"installing the book's code from {{url}} failed (pip exit code "
                           f"{{pip.returncode}}):\\n{{(pip.stdout + pip.stderr)[-3000:]}}")
    importlib.invalidate_caches()
    import minimal

    if getattr(minimal, "__version__", None) != BOOK_RELEASE:
        raise RuntimeError(f"this notebook needs release {{BOOK_RELEASE}} of the book's code, "
                           f"but {{getattr(minimal, '__version__', 'an older one')}} is loaded: "
                           "choose Runtime > Restart session, then run all cells again.")'''


def project_version() -> str:
    """``[project].version`` of pyproject.toml."""
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def repository_url() -> str:
    """_config.yml's ``repository.url`` (the same address the Colab buttons use)."""
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def cell_source(repo_url: str | None = None, version: str | None = None) -> str:
    """The cell's source; ``repo_url`` replaces _config.yml's (tests point it at a local clone)."""
    return TEMPLATE.format(repo_url=repo_url or repository_url(),
                           version=version or project_version())


def citation_text() -> str:
    """CITATION.cff with its ``repository-code`` and ``version`` taken from _config.yml and
    pyproject.toml, the book's one setting for where it lives and which release it is."""
    text = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    text = re.sub(r"^repository-code: .*$", f'repository-code: "{repository_url()}"', text,
                  flags=re.M)
    return re.sub(r"^version: .*$", f'version: "{project_version()}"', text, flags=re.M)


def source_lines(text: str) -> list[str]:
    """A source string as nbformat stores it: lines that keep their newline, the last without."""
    return text.splitlines(keepends=True)


def notebooks() -> list[Path]:
    found = sorted((ROOT / "chapters").rglob("*.ipynb"))
    return [p for p in found if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts]


def _dump(nb: dict, ensure_ascii: bool) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=ensure_ascii) + "\n"


def first_cell_problem(nb: dict) -> str | None:
    """Why a notebook's first cell is not the current install cell, or None if it is."""
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "code":
        return "the first cell is not a code cell"
    if "".join(cells[0].get("source", [])) != cell_source():
        return "the first cell's source is not tools/colab_cell.py's (run: python tools/colab_cell.py write)"
    if "remove-cell" not in cells[0].get("metadata", {}).get("tags", []):
        return "the first cell is not tagged remove-cell"
    return None


def rewritten(path: Path) -> str | None:
    """The text of ``path`` with the current install cell, or None if it already has it."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    layout = [flag for flag in (False, True) if _dump(nb, flag) == text]
    if not layout:
        raise SystemExit(f"{path}: not in nbformat's JSON layout (indent 1); refusing to rewrite it")
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "code":
        raise SystemExit(f"{path}: the first cell is not a code cell; add the install cell by hand")
    new_source = source_lines(cell_source())
    if cells[0]["source"] == new_source:
        return None
    cells[0]["source"] = new_source
    return _dump(nb, layout[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="print the cell's source")
    show.add_argument("--repo-url", help="install from this repository instead of _config.yml's")
    sub.add_parser("check", help="exit 1 if any notebook's first cell is not current")
    sub.add_parser("write", help="rewrite the first cell of every notebook in chapters/")
    args = parser.parse_args(argv)

    if args.cmd == "show":
        print(cell_source(args.repo_url))
        return 0
    if args.cmd == "check":
        problems = [(p, first_cell_problem(json.loads(p.read_text(encoding="utf-8"))))
                    for p in notebooks()]
        for path, problem in problems:
            if problem:
                print(f"{path.relative_to(ROOT)}: {problem}")
        stale = citation_text() != (ROOT / "CITATION.cff").read_text(encoding="utf-8")
        if stale:
            print("CITATION.cff: repository-code or version is not current "
                  "(run: python tools/colab_cell.py write)")
        return 1 if stale or any(problem for _, problem in problems) else 0
    texts = {p: rewritten(p) for p in notebooks()}  # every notebook checked before any is written
    changed = [p for p, text in texts.items() if text is not None]
    for path in changed:
        path.write_text(texts[path], encoding="utf-8")
        print(f"rewrote the first cell of {path.relative_to(ROOT)}")
    print(f"{len(changed)} of {len(notebooks())} notebooks changed")
    if citation_text() != (ROOT / "CITATION.cff").read_text(encoding="utf-8"):
        (ROOT / "CITATION.cff").write_text(citation_text(), encoding="utf-8")
        print("rewrote CITATION.cff's repository-code and version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
