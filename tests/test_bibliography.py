"""Every seed paper has an accurate bibliography entry, and every page's citations resolve."""

import csv
import re
from pathlib import Path

import pybtex.database

ROOT = Path(__file__).resolve().parent.parent
BIB = pybtex.database.parse_file(ROOT / "references.bib")
SEEDS = list(csv.DictReader(open(ROOT / "assets" / "seed_papers.csv", encoding="utf-8")))


def words(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.replace("{", "").replace("}", "").lower())


def test_all_39_seed_papers_are_listed_once():
    assert [int(r["number"]) for r in SEEDS] == list(range(1, 40))
    assert len({r["key"] for r in SEEDS}) == 39


def test_every_seed_paper_has_an_entry_with_its_title_author_and_year():
    for row in SEEDS:
        entry = BIB.entries.get(row["key"])
        assert entry is not None, f"seed paper {row['number']} ({row['title']}) has no entry {row['key']!r}"
        assert words(entry.fields["title"]).startswith(words(row["title"])), row["key"]
        assert entry.persons.get("author"), f"{row['key']} has no authors"
        assert re.fullmatch(r"(19|20)\d\d", entry.fields["year"]), row["key"]


CHAPTER_DIRS = {"rl-basics": "01_rl_basics", "rl-reasoning": "02_rl_reasoning",
                "irl-alignment": "03_irl_alignment", "regret-preferences": "04_regret_preferences",
                "icl-rationality": "05_icl_rationality",
                "in-context-decision-making": "06_in_context_decisions", "offline-rl": "07_offline_rl"}


def test_every_seed_paper_is_cited_in_its_chapter():
    for row in SEEDS:
        folder = ROOT / "chapters" / CHAPTER_DIRS[row["chapter"]]
        text = "".join(p.read_text(encoding="utf-8") for p in folder.rglob("*")
                       if p.suffix in (".md", ".ipynb"))
        assert row["key"] in text, f"{row['key']} is not cited in {folder.name}"


def test_every_cited_key_exists():
    pages = [p for p in ROOT.rglob("*") if p.suffix in (".md", ".ipynb")
             and not {"_build", ".venv", "node_modules"} & set(p.parts)]
    for page in pages:
        for keys in re.findall(r"\{cite:?[a-z]*\}`([^`]+)`", page.read_text(encoding="utf-8")):
            for key in keys.split(","):
                assert key.strip() in BIB.entries, f"{page.name} cites unknown key {key.strip()!r}"
