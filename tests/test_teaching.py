"""The book as instructors use it: one exercise style, an exercise index, a course guide
that covers every section, and one notation that every chapter keeps to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_book import exercises_tool  # pytest puts tests/ on sys.path

ROOT = Path(__file__).resolve().parent.parent

CHAPTER_PAGES = [p for _, _, pages in exercises_tool.toc_chapters() for p in pages
                 if p.startswith("chapters/")]


def all_source(page: str) -> str:
    """Everything on a page a reader sees or runs: markdown and code cells alike."""
    md, nb = ROOT / f"{page}.md", ROOT / f"{page}.ipynb"
    if md.is_file():
        return md.read_text()
    cells = json.loads(nb.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells)


def test_every_exercise_is_labelled_and_followed_by_a_hidden_solution():
    labels = [ex.label for page in CHAPTER_PAGES for ex in exercises_tool.collect(page)]
    assert len(labels) >= 4 * 6, "expected at least four exercises a chapter"
    assert len(labels) == len(set(labels)), "two exercises share a label"


def test_the_style_check_rejects_a_visible_solution(tmp_path, monkeypatch):
    page = tmp_path / "p.md"
    page.write_text("# P\n\n```{exercise}\n:label: ex-a\n\nDo it.\n```\n\n"
                    "```{solution} ex-a\n\nDone.\n```\n")
    monkeypatch.setattr(exercises_tool, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="ex-a must be followed at once"):
        exercises_tool.collect("p")


def test_the_exercise_index_is_current():
    assert (ROOT / "exercises.md").read_text() == exercises_tool.render(), (
        "exercises.md is out of date: run `python tools/exercises.py`")


def test_the_course_guide_covers_every_section_and_its_exercises_exist():
    guide = (ROOT / "course_guide.md").read_text()
    linked = set(re.findall(r"\{doc\}`/?([^`<]+?)`", guide))
    missing = [p for p in CHAPTER_PAGES if p not in linked]
    assert not missing, f"course_guide.md's syllabus leaves out {missing}"
    labels = {ex.label for page in CHAPTER_PAGES + ["chapters/00_start/how_to_run"]
              for ex in exercises_tool.collect(page)}
    named = [a or b for a, b in re.findall(r"\{(?:ref|numref)\}`(?:[^`<]*<([^>]+)>|([^`<]+))`", guide)]
    assert len(named) >= 20, named
    for label in named:
        assert label in labels, f"course_guide.md names an exercise that does not exist: {label}"


# One symbol per idea (notation.md is the reference); the same idea spelled another way
# in a chapter is drift.  Each entry: the symbol as notation.md writes it, and spellings
# that must not appear anywhere in a chapter.
SYMBOLS = [
    (r"\pi_{\mathrm{ref}}", [r"\pi_{\text{ref}}", r"\pi_\text{ref}", r"\pi_{ref}",
                             r"\pi_\mathrm{ref}", r"\pi_{\rm ref}"]),
    (r"\theta_{\mathrm{old}}", [r"\theta_\text{old}", r"\theta_{\text{old}}", r"\theta_{old}",
                                r"\theta_\mathrm{old}"]),
    (r"y_w \succ y_l", [r"y^+ \succ", r"y_+ \succ", r"y^w \succ", r"y_c \succ"]),
    (r"\mathrm{KL}", [r"\text{KL}(", r"\operatorname{KL}", r"D_{KL}", r"D_{\mathrm{KL}}"]),
]


@pytest.mark.parametrize("canonical, variants", SYMBOLS, ids=[s[0] for s in SYMBOLS])
def test_chapters_use_the_notation_pages_symbols(canonical, variants):
    notation = (ROOT / "notation.md").read_text()
    assert canonical in notation, f"notation.md does not define {canonical}"
    for page in CHAPTER_PAGES:
        text = all_source(page)
        for variant in variants:
            assert variant not in text, f"{page} writes {variant}; notation.md uses {canonical}"


def glossary_terms() -> list[str]:
    notation = (ROOT / "notation.md").read_text()
    block = notation.split("```{glossary}", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line and not line.startswith(" ")]


def test_every_glossary_term_is_used_in_a_chapter():
    terms = glossary_terms()
    assert len(terms) >= 20
    def spelling(s: str) -> str:  # British and American spellings, en dashes and hyphens agree
        return s.lower().replace("–", "-").replace("is", "iz")

    text = spelling(" ".join(all_source(p) for p in CHAPTER_PAGES))
    for term in terms:
        base = re.sub(r"\s*\(.*\)", "", term).lower()       # "Regret (of a preference)" -> "regret"
        acronym = re.search(r"\(([A-Z]{2,})\)", term)
        found = spelling(base).rstrip("s") in text or (acronym and spelling(acronym.group(1)) in text)
        assert found, f"the glossary defines {term!r} but no chapter uses it"


# A widget is dead in the static site: its code is folded away (tag hide-input), a markdown
# cell near it says that it needs a running kernel, and a static figure near it shows its
# main cases.  "Near" is within three cells either side.
WIDGET = re.compile(r"\bwidgets\.\w+\(|\binteract(?:ive)?\(")  # building one, not importing
NEAR = 3


def widget_problems(cells: list[dict]) -> list[str]:
    """What each widget-building code cell of a notebook lacks, one line per gap."""
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not WIDGET.search("".join(cell["source"])):
            continue
        name = f"cell {i} ({cell.get('id')})"
        near = [c for c in cells[max(0, i - NEAR):i + NEAR + 1] if c is not cell]
        if "hide-input" not in cell.get("metadata", {}).get("tags", []):
            problems.append(f"{name} builds a widget but is not tagged hide-input")
        if not any(c["cell_type"] == "markdown"
                   and "running kernel" in " ".join("".join(c["source"]).lower().split())
                   for c in near):
            problems.append(f"{name}: no markdown cell within {NEAR} cells says it needs a "
                            "running kernel")
        if not any(c["cell_type"] == "code"
                   and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
                   for c in near):
            problems.append(f"{name}: no static figure (image/png output) within {NEAR} cells")
    return problems


def test_every_widget_is_folded_and_has_a_kernel_note_and_a_static_figure():
    notebooks = [p for p in sorted((ROOT / "chapters").rglob("*.ipynb"))
                 if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts]
    widgets = problems = 0
    report = []
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        widgets += sum(c["cell_type"] == "code" and bool(WIDGET.search("".join(c["source"])))
                       for c in cells)
        found = widget_problems(cells)
        problems += len(found)
        report += [f"{path.relative_to(ROOT)}: {p}" for p in found]
    assert widgets >= 9, f"expected the book's nine widgets, found {widgets}"
    assert not problems, "\n".join(report)


def test_the_widget_check_rejects_a_bare_widget():
    def cell(kind, source, **extra):
        return {"cell_type": kind, "source": source, "metadata": {}, **extra}

    bare = cell("code", "widgets.interactive(draw, x=widgets.IntSlider(1))", outputs=[])
    imported = cell("code", "import ipywidgets as widgets", outputs=[])
    assert widget_problems([imported]) == []
    assert len(widget_problems([imported, bare])) == 3
    figure = cell("code", "plt.show()", outputs=[{"data": {"image/png": "..."}}])
    note = cell("markdown", "It needs a running\nkernel (Colab or Jupyter).")
    bare["metadata"]["tags"] = ["hide-input"]
    assert widget_problems([note, bare, figure]) == []
    far = [note, *[cell("markdown", "text")] * NEAR, bare, figure]
    assert widget_problems(far) == [f"cell {NEAR + 1} (None): no markdown cell within {NEAR} "
                                    "cells says it needs a running kernel"]
