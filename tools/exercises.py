"""Write ``exercises.md``: every exercise in the book, chapter by chapter, with a link.

    python tools/exercises.py           # rewrite exercises.md from the chapters
    python tools/exercises.py --check   # exit 1 if exercises.md is out of date (tests do this)

Exercises are written in one style everywhere: a sphinx-exercise ``{exercise}`` directive
with a ``:label:``, followed at once by its ``{solution}`` with ``:class: dropdown`` (hidden
until the reader opens it).  :func:`collect` finds them in the order of ``_toc.yml`` and
raises if one breaks that style.  Each entry shows the exercise's first sentence and
whether it asks for code ("coding": run, change or write code) or for a derivation
("pen and paper").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "exercises.md"
FENCE = re.compile(r"^(`{3,}|:{3,})\{(exercise|solution)\}[^\n]*\n(.*?)^\1[ \t]*$",
                   re.MULTILINE | re.DOTALL)
CODING = re.compile(r"`[^`]+`|\b(code|run|re-run|rerun|train|plot|implement|modify|change the|"
                    r"notebook|cell|simulate|measure|write a|add a)\b", re.IGNORECASE)


ABBREVIATIONS = ("e.g.", "i.e.", "eq.", "Eq.", "eqs.", "vs.", "cf.", "Fig.", "fig.")


@dataclass
class Exercise:
    page: str     # toc path without suffix
    label: str
    first: str    # first sentence of the question
    kind: str     # "coding" or "pen and paper"
    level: str    # "easy", "medium" or "hard": the exercise's title, ```{exercise} medium


def toc_chapters() -> list[tuple[str, str, list[str]]]:
    """(chapter page, title, [its pages in order]) for every chapter of the book."""
    def walk(entries):
        for entry in entries:
            yield entry["file"]
            yield from walk(entry.get("sections", []))

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            pages = list(walk([chapter]))
            chapters.append((chapter["file"], page_title(chapter["file"]), pages))
    return chapters


def page_source(page: str) -> str:
    """The markdown of a page: a .md file, or a notebook's markdown cells joined."""
    md, nb = ROOT / f"{page}.md", ROOT / f"{page}.ipynb"
    if md.is_file():
        return md.read_text()
    if nb.is_file():
        cells = json.loads(nb.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    raise FileNotFoundError(f"_toc.yml lists {page!r} but there is no {page}.md or .ipynb")


def page_title(page: str) -> str:
    heading = re.search(r"^# (.+)$", page_source(page), re.MULTILINE)
    return heading.group(1).strip() if heading else page


# Some exercises open by naming their kind: "Coding.", "(Pen and paper.)", "Pen and paper, then code."
KIND_TAG = re.compile(r"^\(?\*{0,2}(coding|pen and paper)([^.:]*?)\)?[.:]\)?\*{0,2}\s*",
                      re.IGNORECASE)


def question_text(body: str) -> str:
    return " ".join(line.strip() for line in body.splitlines()
                    if line.strip() and not line.startswith(":"))


ROLE = re.compile(r"\{[a-z:-]+\}`[^`]*`")  # a MyST role such as {eq}`label`: not code
CODE = re.compile(r"`[^`]*`")


def kind_of(body: str) -> str:
    body = ROLE.sub("ROLE", body)
    tag = KIND_TAG.match(question_text(body))
    if tag:
        return "coding" if "cod" in (tag.group(1) + tag.group(2)).lower() else "pen and paper"
    if re.match(r"(show|prove|derive|explain|argue)\b", question_text(body), re.IGNORECASE):
        return "pen and paper"
    return "coding" if CODING.search(body) else "pen and paper"


def first_sentence(body: str) -> str:
    text = KIND_TAG.sub("", question_text(body), count=1)
    sentence = text
    for match in re.finditer(r"[.?!](\s|$)", text):
        head = text[:match.start() + 1]
        bare = CODE.sub("", head)  # a `$` inside code is not math
        if (bare.count("$") % 2 == 0 and head.count("`") % 2 == 0
                and not head.endswith(ABBREVIATIONS) and len(head) >= 40):
            sentence = head  # the first full stop outside math and code, past a short title
            break
    return sentence[:1].upper() + sentence[1:]


def collect(page: str) -> list[Exercise]:
    """The exercises on one page, checking each is labelled and followed by its hidden solution."""
    blocks = [(m.group(2), m.group(0).splitlines()[0], m.group(3)) for m in FENCE.finditer(page_source(page))]
    found = []
    for i, (kind, head, body) in enumerate(blocks):
        if kind != "exercise":
            continue
        label = re.search(r"^:label:\s*(\S+)", body, re.MULTILINE)
        if not label:
            raise ValueError(f"{page}: an exercise has no :label: ({first_sentence(body)!r})")
        label = label.group(1)
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if (following is None or following[0] != "solution"
                or following[1].split("}", 1)[1].strip() != label
                or not re.search(r"^:class:\s*dropdown", following[2], re.MULTILINE)):
            raise ValueError(f"{page}: exercise {label} must be followed at once by "
                             f"```{{solution}} {label} with :class: dropdown")
        level = re.search(r"\b(easy|medium|hard)\)?\s*$", head.split("}", 1)[1])
        if not level:
            raise ValueError(f"{page}: exercise {label} has no difficulty: write "
                             "```{exercise} easy (or medium, hard), or a title ending in (easy)")
        found.append(Exercise(page, label, first_sentence(body), kind_of(body), level.group(1)))
    return found


def render() -> str:
    lines = ["# All exercises", "",
             "Every exercise in the book, chapter by chapter.  Each link opens the exercise in "
             "its section; its solution sits right below it, folded away until you open it.  "
             "*Coding* exercises ask you to run, change or write code (the instructor's "
             "{doc}`course guide <course_guide>` builds assignments from them); "
             "*pen and paper* ones ask for a derivation or an argument.  Each is marked *easy* "
             "(a direct application of the section), *medium* (combines ideas or needs a small "
             "experiment) or *hard* (open-ended or a longer derivation).",
             "", "<!-- Written by `python tools/exercises.py`; edit the chapters, not this page. -->",
             ""]
    total = 0
    for _chapter, title, pages in toc_chapters():
        exercises = [ex for page in pages for ex in collect(page)]
        if not exercises:
            continue
        total += len(exercises)
        lines += [f"## {title}", ""]
        for ex in exercises:
            lines.append(f"- {{ref}}`{ex.label}` ({ex.kind}, {ex.level}, {{doc}}`/{ex.page}`): "
                         f"{ex.first}")
        lines.append("")
    lines[2] = lines[2] + f"  There are {total} in all."
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if exercises.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print("exercises.md is out of date: run `python tools/exercises.py`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
