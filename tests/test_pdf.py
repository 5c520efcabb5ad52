"""`make pdf`: the whole book as one printable PDF (tools/pdf.py).

One print of the book (about a minute on two cores): it must exist, carry every chapter's
title, a table of contents, the solutions appendix and typeset math, and have the number of
pages its text calls for.  The switch that leaves the solutions out is checked on the print
edition's HTML, which is what Chromium prints.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import pdf  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium (make chromium)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("pdf") / "book.pdf"
    assert pdf.main(["--out", str(out)]) == 0
    return out


def test_pdf_has_every_chapter_contents_and_typeset_math(built):
    assert pdf.check(built) == []


def test_pdf_page_count_matches_its_text(built):
    n_pages, _ = pdf.pdf_text(built)
    want = pdf.expected_pages((pdf.SINGLE / "print.html").read_text())
    assert abs(n_pages - want) <= pdf.PAGE_MARGIN * want, (n_pages, want)
    assert n_pages > 100


def test_pdf_collects_the_solutions_in_an_appendix(built):
    _, text = pdf.pdf_text(built)
    tail = text[text.rfind("Appendix: solutions to the exercises"):]
    assert len(re.findall(r"Solution to Exercise \d+\.\d+", tail)) >= 40


def test_no_solutions_switch_leaves_every_solution_out(built):
    html = (pdf.SINGLE / "intro.html").read_text()
    with_solutions = pdf.printable(html, solutions=True, version="0")
    without = pdf.printable(html, solutions=False, version="0")
    assert with_solutions.count('class="solution') >= 40
    assert 'class="solution' not in without and "Appendix: solutions" not in without


def test_check_reports_a_missing_file(tmp_path):
    assert pdf.check(tmp_path / "absent.pdf") == [f"{tmp_path / 'absent.pdf'} does not exist"]
