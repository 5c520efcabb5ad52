"""Build the whole book as one printable PDF: ``make pdf`` (``_build/pdf/book.pdf``).

    python tools/pdf.py                  # solutions collected in an appendix at the end
    python tools/pdf.py --no-solutions   # the same book with every solution left out
    python tools/pdf.py --check FILE     # check a built PDF (what tests/test_pdf.py asserts)

Why this path: it works offline with what the book already uses.  Jupyter Book's LaTeX route
needs a TeX distribution (several GB of Debian packages, and the notebooks' HTML outputs and
widgets do not survive it), while the single-page HTML build is the same Sphinx build as the
website, with MathJax and the figures shipped under ``assets/offline``, and Debian's Chromium
(already installed for the browser tests) prints it with page numbers and a PDF outline.

Steps: (1) ``jupyter-book build --builder singlehtml`` renders every page into one HTML file;
(2) :func:`printable` turns that page into a print edition: a title page and a table of
contents, each chapter starting on a new page, every collapsed box opened, navigation removed,
and the exercises' solutions moved to an appendix (or dropped); (3) Chromium prints it, with
page numbers from the print style sheet :data:`PRINT_CSS`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SINGLE = ROOT / "_build" / "singlehtml"
OUT_DIR = ROOT / "_build" / "pdf"

PRINT_CSS = """
@page { size: A4; margin: 16mm 15mm 18mm 15mm;
        @bottom-center { content: counter(page); font: 9pt sans-serif; color: #555; } }
@page :first { @bottom-center { content: none; } }
html { font-size: 10pt; }
body { background: white; }
.headerlink, .d-print-none, .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary,
.header-article, .prev-next-area, .bd-footer, .bd-footer-article, .bd-footer-content,
.toggle-button, .copybtn, .skip-link, .pst-async-banner-revealer, dialog { display: none !important; }
.bd-main, .bd-content, .bd-article-container, .bd-page-width, .bd-container, .bd-container__inner
  { max-width: none !important; width: auto !important; margin: 0 !important; padding: 0 !important; }
.book-chapter { break-before: page; }
.book-title-page { height: 240mm; display: flex; flex-direction: column; justify-content: center;
                   text-align: center; }
.book-title-page h1 { font-size: 26pt; margin-bottom: 1.5em; }
.book-toc { break-before: page; break-after: page; }
.book-toc ul { list-style: none; padding-left: 0; }
.book-toc li.toc-chapter { font-weight: 600; margin-top: 0.6em; }
.book-toc li.toc-section { padding-left: 2em; font-weight: normal; margin-top: 0.1em; }
.book-toc a { color: inherit; text-decoration: none; }
.book-solution-pointer { font-size: 0.9em; font-style: italic; }
figure, img, .cell_output, table, .admonition, .proof, pre { break-inside: avoid; }
h2, h3, h4 { break-after: avoid; }
img { max-width: 100% !important; height: auto; }
pre { white-space: pre-wrap; word-break: break-all; }
"""


def build_singlehtml(strict: bool = True) -> Path:
    """Render the whole book into one HTML page (warnings are errors if ``strict``); return it."""
    jb = Path(sys.executable).with_name("jupyter-book")
    if SINGLE.exists():
        shutil.rmtree(SINGLE)
    cmd = [str(jb), "build", str(ROOT), "--builder", "singlehtml"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"error: the single-page build failed (exit {proc.returncode}); see above")
    return SINGLE / "intro.html"


def _title_text(tag) -> str:
    return re.sub(r"\s*#\s*$", "", tag.get_text(" ", strip=True))


def printable(html: str, solutions: bool, version: str) -> str:
    """The print edition of the single-page book (see the module docstring)."""
    import bs4

    soup = bs4.BeautifulSoup(html, "html.parser")
    article = soup.select_one("article.bd-article") or soup.select_one("article")
    if article is None:
        raise SystemExit("error: the single-page build has no <article>; was it built by jupyter-book?")

    # every collapsed box opens; the togglebutton script only acts on the "dropdown" class
    for box in article.select(".dropdown"):
        box["class"] = [c for c in box.get("class", []) if c != "dropdown"]
    for details in article.select("details"):
        details["open"] = ""

    # the solutions move to an appendix, in the order they appear, each titled by its exercise
    appendix = soup.new_tag("section", attrs={"class": "book-chapter", "id": "appendix-solutions"})
    heading = soup.new_tag("h2")
    heading.string = "Appendix: solutions to the exercises"
    appendix.append(heading)
    for sol in article.select("div.solution"):
        exercise = sol.find_previous(class_="exercise")
        sol.extract()
        if not solutions:
            continue
        title = sol.select_one(".admonition-title")
        if exercise is not None and title is not None:
            name = exercise.select_one(".admonition-title").get_text(" ", strip=True)
            name = re.sub(r"\s*\((?:easy|medium|hard)\b.*$", "", name)  # "Exercise 1.3"
            title.clear()
            back = soup.new_tag("a", href=f"#{exercise.get('id')}")
            back.string = f"Solution to {name}"
            title.append(back)
            if sol.get("id"):
                note = soup.new_tag("p", attrs={"class": "book-solution-pointer"})
                link = soup.new_tag("a", href=f"#{sol['id']}")
                link.string = "Its solution is in the appendix."
                note.append(link)
                exercise.append(note)
        appendix.append(sol)

    # each top-level page starts a new printed page; the contents list its pages and sections
    toc = soup.new_tag("nav", attrs={"class": "book-toc"})
    toc_h = soup.new_tag("h2")
    toc_h.string = "Contents"
    toc.append(toc_h)
    ul = soup.new_tag("ul")
    toc.append(ul)
    # the single-page build marks where each page of the book begins with <span id="document-...">
    for marker in article.select('span[id^="document-"]'):
        section = marker.find_next_sibling("section")
        h = section.find(["h2", "h3"]) if section is not None else None
        if h is None:
            continue
        if h.name == "h2":
            section["class"] = section.get("class", []) + ["book-chapter"]
        anchor = section.get("id")
        li = soup.new_tag("li", attrs={"class": "toc-chapter" if h.name == "h2" else "toc-section"})
        link = soup.new_tag("a", href=f"#{anchor}" if anchor else "#")
        link.string = _title_text(h)
        li.append(link)
        ul.append(li)
    if solutions:
        li = soup.new_tag("li", attrs={"class": "toc-chapter"})
        link = soup.new_tag("a", href="#appendix-solutions")
        link.string = "Appendix: solutions to the exercises"
        li.append(link)
        ul.append(li)
        article.append(appendix)

    title = soup.title.get_text(strip=True) if soup.title else "The book"
    title = re.sub(r"\s*[—|-]\s*.*$", "", title) or title
    page = soup.new_tag("section", attrs={"class": "book-title-page"})
    h1 = soup.new_tag("h1")
    h1.string = _title_text(article.find("h1")) if article.find("h1") else title
    page.append(h1)
    sub = soup.new_tag("p")
    sub.string = f"Version {version}" + ("" if solutions else " (edition without solutions)")
    page.append(sub)
    first_section = article.find("section")
    if first_section is not None:
        first_section.insert_before(page)
        first_section.insert_before(toc)
        intro_h1 = first_section.find("h1")
        if intro_h1 is not None:
            intro_h1.decompose()  # the title page carries the title

    # the print edition's body is the article alone: no theme layout (sidebars, header, footer)
    # to hide, shift or clip; the page's scripts (MathJax, widgets) stay
    scripts = [t.extract() for t in soup.body.find_all("script")]
    soup.body.clear()
    soup.body["class"] = ["book-print"]
    soup.body.append(article)
    for script in scripts:
        soup.body.append(script)

    style = soup.new_tag("style")
    style.string = PRINT_CSS
    soup.head.append(style)
    return str(soup)


def print_pdf(page: Path, out: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("error: chromium is not installed; run `make chromium` (Debian's package) first")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               "--generate-pdf-document-outline", "--virtual-time-budget=300000",
               "--run-all-compositor-stages-before-draw", f"--print-to-pdf={out}", page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not out.exists():
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"error: chromium did not print {out} (exit {proc.returncode})")


def chapter_titles() -> list[str]:
    """Each numbered chapter's title, from its landing page's first heading."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    titles = []
    for part in toc["parts"]:
        if not part.get("numbered"):
            continue
        for chapter in part["chapters"]:
            text = (ROOT / f"{chapter['file']}.md").read_text()
            titles.append(re.search(r"^# (.+)$", text, re.MULTILINE).group(1).strip())
    return titles


def pdf_text(path: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(p.extract_text() or "" for p in reader.pages)


# Calibrated on the 0.3 book (560,000 characters and 37 images on 262 A4 pages); a PDF far from
# this estimate has lost pages (a print cut short) or gained blank ones.
CHARS_PER_PAGE = 2150
PAGES_PER_IMAGE = 0.2
PAGE_MARGIN = 0.3


def expected_pages(print_html: str) -> float:
    """How many pages the print edition ``print_html`` should fill (see CHARS_PER_PAGE)."""
    import bs4

    soup = bs4.BeautifulSoup(print_html, "html.parser")
    article = soup.select_one("article") or soup
    return len(article.get_text()) / CHARS_PER_PAGE + PAGES_PER_IMAGE * len(article.select("img"))


def check(path: Path, print_html: Path | None = None) -> list[str]:
    """What is wrong with a built PDF (empty if nothing): chapters, math, contents, page count."""
    if not path.exists():
        return [f"{path} does not exist"]
    n_pages, text = pdf_text(path)
    print_html = print_html or SINGLE / "print.html"
    if print_html.exists():
        want = expected_pages(print_html.read_text())
        if abs(n_pages - want) > PAGE_MARGIN * want:
            return [f"{n_pages} pages, expected {want:.0f} +- {PAGE_MARGIN:.0%}"]
    text = unicodedata.normalize("NFKC", text)  # the PDF's ligatures (fi, ffl) back to letters
    flat = re.sub(r"\s+", " ", text)
    problems = [f"chapter title missing: {t!r}" for t in chapter_titles()
                if re.sub(r"\s+", " ", t) not in flat]
    # Sphinx writes math between \\( \\) and \\[ \\]; MathJax replaces them when it typesets
    raw_tex = re.findall(r"\\[(\[][^\n]{0,40}", text)
    if raw_tex:
        problems.append(f"{len(raw_tex)} pieces of raw TeX (MathJax did not typeset them): {raw_tex[:3]}")
    if "Contents" not in text:
        problems.append("no table of contents")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-solutions", action="store_true", help="leave every solution out")
    parser.add_argument("--out", type=Path, default=None, help="where to write the PDF")
    parser.add_argument("--lenient", action="store_true",
                        help="print even if Sphinx warns (a draft; `make book` is the strict gate)")
    parser.add_argument("--check", type=Path, default=None, metavar="FILE", help="only check FILE")
    args = parser.parse_args(argv)
    if args.check is not None:
        problems = check(args.check)
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        if not problems:
            print(f"{args.check}: {pdf_text(args.check)[0]} pages, every chapter present")
        return 1 if problems else 0

    out = args.out or OUT_DIR / ("book-no-solutions.pdf" if args.no_solutions else "book.pdf")
    sys.path.insert(0, str(ROOT))
    from minimal import __version__

    page = build_singlehtml(strict=not args.lenient)
    printed = page.with_name("print.html")
    printed.write_text(printable(page.read_text(), solutions=not args.no_solutions, version=__version__))
    out.parent.mkdir(parents=True, exist_ok=True)
    print_pdf(printed, out)
    problems = check(out)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: {pdf_text(out)[0]} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
