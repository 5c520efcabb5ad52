"""The package's layout keeps its promise: shared code in ``core``, worlds apart, chapters apart.

``minimal/__init__.py`` maps chapters to modules; this test holds the code to that map:
every module is in it, an algorithm module imports only ``core``, ``worlds`` and modules
of its own chapter, a world imports nothing but ``core`` (no optimizer, no training loop),
and ``core`` imports nothing above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import minimal

pytestmark = pytest.mark.unit

PACKAGE = Path(minimal.__file__).resolve().parent

# the chapter of each algorithm module (the map in minimal/__init__.py)
CHAPTER = {
    "policy_gradient": 1, "token_mdp": 1, "char_lm": 1,
    "sft": 2, "grpo": 2, "prompt_curriculum": 2, "reasoning_study": 2,
    "reward_model": 3, "dpo": 3, "rlhf_ppo": 3, "preference_bandit": 3, "delta_learning": 3,
    "directional_stimulus": 3,
    "preferences": 4, "reward_learning": 4, "cpl": 4,
    "icl_training": 5, "hierarchical_bayes": 5, "rational_choice": 5,
    "bandit_algorithms": 6, "dpt": 6, "algorithm_distillation": 6, "steering": 6,
    "return_conditioning": 7, "dichotomy_of_control": 7, "contrastive_repr": 7,
}


def modules(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def imported(path: Path) -> set[str]:
    """Dotted names of the ``minimal`` modules a file imports (at any depth in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minimal"):
            if node.module in ("minimal", "minimal.core", "minimal.worlds"):
                out |= {f"{node.module}.{a.name}" for a in node.names if a.name != "asset_path"}
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("minimal.")}
    return out


def test_every_algorithm_module_has_a_chapter_and_the_package_docstring_names_it():
    assert set(modules(PACKAGE)) == set(CHAPTER)
    doc = minimal.__doc__
    for name in [*CHAPTER, *modules(PACKAGE / "core"), *modules(PACKAGE / "worlds")]:
        assert f"``{name}``" in doc or f"``core.{name}``" in doc, name


@pytest.mark.parametrize("name", sorted(CHAPTER))
def test_an_algorithm_imports_only_core_worlds_and_its_own_chapter(name):
    for dep in imported(PACKAGE / f"{name}.py"):
        if dep.startswith(("minimal.core.", "minimal.worlds.")):
            continue
        other = dep.removeprefix("minimal.")
        assert CHAPTER.get(other) == CHAPTER[name], (
            f"minimal.{name} (chapter {CHAPTER[name]}) imports {dep} "
            f"(chapter {CHAPTER.get(other)}): move what they share to core or worlds")


@pytest.mark.parametrize("name", modules(PACKAGE / "worlds"))
def test_a_world_imports_only_core_and_does_not_learn(name):
    path = PACKAGE / "worlds" / f"{name}.py"
    for dep in imported(path):
        assert dep.startswith("minimal.core."), f"worlds.{name} imports {dep}"
        assert dep not in ("minimal.core.train", "minimal.core.config") or "no_command_line" in \
            path.read_text(), f"worlds.{name} imports {dep}"
    text = path.read_text(encoding="utf-8")
    assert "torch.optim" not in text and ".backward()" not in text, f"worlds.{name} trains"


@pytest.mark.parametrize("name", modules(PACKAGE / "core"))
def test_core_imports_nothing_above_it(name):
    for dep in imported(PACKAGE / "core" / f"{name}.py"):
        assert dep.startswith("minimal.core."), f"core.{name} imports {dep}"
