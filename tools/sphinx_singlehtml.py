"""A Sphinx extension for this book: let the single-page HTML build (``make pdf``) render every node.

Sphinx looks up a node's HTML visitors under the builder's *name* first and falls back to
its format only when no extension registered anything under that name.  Some of the book's
extensions register visitors for ``singlehtml`` explicitly, so the fallback never happens and
nodes registered only for ``html`` (myst-nb's ``HideCodeCellNode``, behind every hidden code
cell) stop the single-page build with "unknown node type".  This copies the missing ``html``
visitors to ``singlehtml`` when a builder starts; the normal HTML build is unchanged.
"""

from __future__ import annotations


def share_html_visitors(app) -> None:
    handlers = app.registry.translation_handlers
    html = handlers.get("html", {})
    single = handlers.setdefault("singlehtml", {})
    for node_name, visitors in html.items():
        single.setdefault(node_name, visitors)


def setup(app):
    app.connect("builder-inited", share_html_visitors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
