"""The built book as a reader meets it: every page driven in a real browser.

The strictly built site (the session fixture ``built_book``) is served on localhost and
opened in Debian's Chromium through Playwright (``executable_path``; Playwright never
downloads a browser here).  Each page is visited once; the checks below read the record
of that visit:

* it loads with no console error, no uncaught exception, no failed request, and asks for
  nothing outside localhost (requests elsewhere are blocked and recorded);
* math is typeset by the shipped MathJax, and no raw ``$...$`` is left in the prose;
* every image loads and every figure has alt text;
* a notebook page's Colab button opens that very notebook on the book's branch;
* every internal link and citation points at a page and anchor that exist;
* saved widget views render;
* the teaching layer: each chapter's first section is numbered N.1, no "Eq. Eq." and no
  raw equation label is left in the prose, every algorithm box in a page's source renders,
  and no displayed equation overflows its column or runs under its number at 1280 px.

The search page must find a term from a chapter.  A screenshot of each chapter's first
page goes to ``artifacts/screenshots/`` (not committed) for a person to look at.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from test_book import toc_files  # pytest puts tests/ on sys.path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))


PAGES = [yaml.safe_load((ROOT / "_toc.yml").read_text())["root"], *toc_files()]
NOTEBOOK_PAGES = [p for p in PAGES if (ROOT / f"{p}.ipynb").is_file()]
CHAPTER_FIRST_PAGES = [p for p in PAGES if re.fullmatch(r"chapters/\d\d_[a-z_]+/index", p)]


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("the browser tests need Debian's Chromium: `apt-get install chromium` "
                    "(`make test` installs it), or set CHROMIUM=/path/to/chromium")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book: Path):
    """The built book served on 127.0.0.1 (a free port) for the duration of this module."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(built_book)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@dataclass
class Visit:
    """What a reader's browser saw on one page."""

    errors: list[str] = field(default_factory=list)      # console errors, uncaught exceptions
    failed: list[str] = field(default_factory=list)      # failed or >= 400 local requests
    external: list[str] = field(default_factory=list)    # requests outside localhost (blocked)
    has_math: bool = False
    typeset: int = 0
    raw_math: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    colab: list[str] = field(default_factory=list)
    has_widget_state: bool = False
    widgets: int = 0
    hidden_gaps: list[str] = field(default_factory=list)  # hidden output elements that take space
    number: str = ""                                     # the page title's section number
    prose: str = ""                                      # the article's text (see PROSE_JS)
    algorithms: int = 0                                  # rendered algorithm boxes
    math_overflow: list[str] = field(default_factory=list)  # displayed equations too wide


# Text the reader sees in the article, without code, outputs and typeset math.
PROSE_JS = """() => {
  const a = document.querySelector('article').cloneNode(true);
  a.querySelectorAll('pre, code, .cell_output, .output, script, style, mjx-container')
   .forEach(e => e.remove());
  return a.innerText;
}"""
IMAGES_JS = """() => [...document.querySelectorAll('article img')].map(e => ({
  src: e.currentSrc.slice(0, 120), loaded: e.complete && e.naturalWidth > 0,
  alt: e.getAttribute('alt') || '', in_widget: !!e.closest('.jupyter-widgets')}))"""
LINKS_JS = """() => [...document.querySelectorAll('article a[href], nav a[href]')]
  .map(e => e.href).filter(h => h.startsWith(location.origin))"""
# Output elements that are invisible but still take vertical space (a finished progress bar
# saved as a hidden widget leaves such a gap unless _static/book.css collapses it).
# (A caption's permalink, .headerlink, is hidden until hovered by design and is not a gap.)
HIDDEN_GAPS_JS = """() => [...document.querySelectorAll('.cell_output *:not(.headerlink)')].filter(e => {
  const hidden = getComputedStyle(e).visibility === 'hidden';
  const parentHidden = e.parentElement && getComputedStyle(e.parentElement).visibility === 'hidden';
  return hidden && !parentHidden && e.getBoundingClientRect().height > 1;
}).map(e => `${e.className} (${Math.round(e.getBoundingClientRect().height)} px)`)"""
# Displayed equations whose typeset glyphs leave their column or run under the equation number
# (glyph boxes, mjx-c, not the container: an aligned environment's table spans the full width).
MATH_OVERFLOW_JS = """() => [...document.querySelectorAll('article div.math')].filter(d => {
  const box = d.getBoundingClientRect();
  const glyphs = [...d.querySelectorAll('mjx-c')].map(c => c.getBoundingClientRect())
    .filter(r => r.width > 0);
  const eqno = d.querySelector('.eqno');
  const no = eqno ? eqno.getBoundingClientRect() : null;
  return glyphs.some(r => r.right > box.right + 1 || r.left < box.left - 1 ||
    (no && no.width > 0 && r.right > no.left + 1 && r.left < no.right &&
     r.bottom > no.top + 1 && r.top < no.bottom - 1));
}).map(d => d.id || (d.innerText || '').slice(0, 60))"""
COLAB_JS = """() => [...document.querySelectorAll('a[href*="colab.research.google.com"]')]
  .map(e => e.href)"""


@contextlib.contextmanager
def chromium():
    """A fresh headless Chromium context (1280 x 900)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(),
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser.new_context(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@pytest.fixture(scope="module")
def visits(site: str) -> dict[str, Visit]:
    """Open every page of the book once in Chromium and record what happened."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    records: dict[str, Visit] = {}
    with chromium() as context:
        page = context.new_page()
        visit = Visit()

        def route(r):
            if r.request.url.startswith(site) or r.request.url.startswith("data:"):
                r.continue_()
            else:
                visit.external.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.errors.append(f"uncaught: {e}"))
        page.on("requestfailed",
                lambda r: None if r.url in visit.external else visit.failed.append(r.url))
        page.on("response",
                lambda r: visit.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        for name in PAGES:
            visit = Visit()
            page.goto(f"{site}/{name}.html", wait_until="networkidle")
            visit.has_math = page.locator(".math").count() > 0
            visit.has_widget_state = page.locator(
                'script[type="application/vnd.jupyter.widget-state+json"]').count() > 0
            page.evaluate("() => window.MathJax && MathJax.startup ? "
                          "MathJax.startup.promise.then(() => true) : true")
            if visit.has_widget_state:
                page.wait_for_selector(".jupyter-widgets", state="attached", timeout=15_000)
            visit.typeset = page.locator("mjx-container").count()
            visit.prose = page.evaluate(PROSE_JS)
            visit.raw_math = re.findall(r"\$[^\s$][^$\n]{0,80}\$|\\(?:frac|mathbb|mathrm)\{",
                                        visit.prose)
            visit.number = page.evaluate("() => (document.querySelector('article h1 "
                                         ".section-number') || {innerText: ''}).innerText")
            visit.algorithms = page.locator("div.algorithm").count()
            visit.math_overflow = page.evaluate(MATH_OVERFLOW_JS)
            visit.images = page.evaluate(IMAGES_JS)
            visit.links = page.evaluate(LINKS_JS)
            visit.colab = page.evaluate(COLAB_JS)
            visit.widgets = page.locator(".jupyter-widgets").count()
            visit.hidden_gaps = page.evaluate(HIDDEN_GAPS_JS)
            if name in CHAPTER_FIRST_PAGES:
                page.screenshot(path=str(SCREENSHOTS / f"{name.split('/')[1]}.png"))
            records[name] = visit
    return records


def local_target(url: str, built: Path) -> tuple[Path, str]:
    """The file a same-site URL serves, and its #fragment."""
    parsed = urlparse(url)
    path = unquote(parsed.path).lstrip("/") or "index.html"
    target = built / path
    if target.is_dir():
        target = target / "index.html"
    return target, parsed.fragment


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_without_errors_or_network(visits, name):
    visit = visits[name]
    assert not visit.errors, f"console errors on {name}: {visit.errors}"
    assert not visit.failed, f"failed requests on {name}: {visit.failed}"
    assert not visit.external, f"{name} asked for something outside the book: {visit.external}"


@pytest.mark.parametrize("name", PAGES)
def test_math_is_typeset(visits, name):
    visit = visits[name]
    if visit.has_math:
        assert visit.typeset > 0, f"{name} has math but MathJax typeset none of it"
    assert not visit.raw_math, f"raw LaTeX left in the prose of {name}: {visit.raw_math[:5]}"


@pytest.mark.parametrize("name", PAGES)
def test_images_load_and_figures_have_alt_text(visits, name):
    for image in visits[name].images:
        assert image["loaded"], f"an image on {name} did not load: {image['src']}"
        # Images drawn inside a saved widget view come from the widget's own output area,
        # which has no alt attribute to give; the static figure beside each widget has one.
        if not image["in_widget"]:
            assert image["alt"].strip(), f"an image on {name} has no alt text: {image['src']}"


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_colab_button_opens_this_notebook(visits, name):
    owner_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    expected = (f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/"
                f"{name}.ipynb")
    assert expected in visits[name].colab, f"{name}: Colab links {visits[name].colab}"


@pytest.mark.parametrize("name", PAGES)
def test_internal_links_and_citations_resolve(visits, built_book, name):
    for url in visits[name].links:
        target, fragment = local_target(url, built_book)
        assert target.is_file(), f"{name} links to a missing page: {url}"
        if fragment and target.suffix == ".html":
            assert re.search(rf'id="{re.escape(fragment)}"', target.read_text()), (
                f"{name} links to a missing anchor: {url}")


def test_every_saved_widget_view_renders(visits):
    with_widgets = [name for name, v in visits.items() if v.has_widget_state]
    assert len(with_widgets) >= 5, "expected saved widget views in several chapters"
    for name in with_widgets:
        assert visits[name].widgets > 0, f"the saved widget view on {name} did not render"


def test_finished_progress_bars_leave_no_gap(visits):
    gaps = {name: v.hidden_gaps for name, v in visits.items() if v.hidden_gaps}
    assert not gaps, f"hidden output elements still take space: {gaps}"


def test_each_chapter_has_a_screenshot(visits):
    for name in CHAPTER_FIRST_PAGES:
        shot = SCREENSHOTS / f"{name.split('/')[1]}.png"
        assert shot.is_file() and shot.stat().st_size > 10_000, shot


@pytest.mark.parametrize("term, page", [("Bradley", "chapters/03_irl_alignment"),
                                        ("regret", "chapters/04_regret_preferences")])
def test_search_finds_a_term_from_a_chapter(site, term, page):
    with chromium() as context:
        tab = context.new_page()
        tab.goto(f"{site}/search.html?q={term}", wait_until="networkidle")
        tab.wait_for_selector("#search-results li a", timeout=15_000)
        hits = tab.eval_on_selector_all("#search-results li a", "els => els.map(e => e.href)")
    assert any(f"/{page}/" in hit for hit in hits), hits


# ------------------------------------------------------------------ the teaching layer
CHAPTERS = {int(name.split("/")[1][:2]): name for name in CHAPTER_FIRST_PAGES}


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_the_first_section_of_every_chapter_is_numbered_n_1(visits, chapter):
    first = PAGES[PAGES.index(CHAPTERS[chapter]) + 1]
    assert visits[CHAPTERS[chapter]].number.strip() == f"{chapter}.", CHAPTERS[chapter]
    assert visits[first].number.strip() == f"{chapter}.1.", (first, visits[first].number)


@pytest.mark.parametrize("name", PAGES)
def test_no_doubled_or_raw_equation_references(visits, name):
    prose = visits[name].prose
    assert "Eq. Eq." not in prose and "eq. Eq." not in prose, name
    raw = re.findall(r"\b[Ee]qs?\.\s+`?[a-z]+(?:-[a-z0-9]+)+`?(?![\w(])", prose)
    assert not raw, f"raw equation labels in the prose of {name}: {raw[:5]}"
    assert "{eq}" not in prose and "{ref}" not in prose, f"an unrendered role on {name}"


@pytest.mark.parametrize("name", PAGES)
def test_every_algorithm_box_renders(visits, name):
    source = next(ROOT.glob(f"{name}.*")).read_text(encoding="utf-8")
    declared = len(re.findall(r"\{prf:algorithm\}", source))
    assert visits[name].algorithms == declared, (name, visits[name].algorithms, declared)


def test_the_book_has_an_algorithm_box_for_every_method(visits):
    assert sum(v.algorithms for v in visits.values()) >= 25


@pytest.mark.parametrize("name", PAGES)
def test_no_displayed_equation_overflows_at_1280_px(visits, name):
    assert not visits[name].math_overflow, (name, visits[name].math_overflow)


@pytest.mark.parametrize("name", PAGES)
def test_exercise_links_show_a_title_or_number_not_a_label(visits, name):
    slugs = re.findall(r"\b[a-z0-9]+-ex-[a-z0-9-]+\b", visits[name].prose)
    assert not slugs, f"exercise labels shown as text on {name}: {slugs[:5]}"
