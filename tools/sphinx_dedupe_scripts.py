"""A Sphinx extension for this book: write each <script> tag once per page.

jupyter-book 1.x registers sphinx-thebe's inline configuration script twice, so every
page declared `const THEBE_JS_URL` twice and the browser reported a SyntaxError (the
browser tests in tests/test_browser.py caught it).  This drops exact repeats from the
page's script list when the page's context is built (every extension has registered its
scripts by then: sphinx-thebe does it before the documents are read); nothing else changes.
"""

from __future__ import annotations


def _key(script) -> tuple:
    # an inline script is registered with filename None by some extensions, "" by others
    return (str(getattr(script, "filename", script) or ""),
            tuple(sorted(getattr(script, "attributes", {}).items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
