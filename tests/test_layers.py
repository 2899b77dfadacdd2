"""The package layout, enforced (an AST walk, so strings and comments never match):

- every import of a project module (absolute or relative, inside functions and under `if TYPE_CHECKING:` too)
  goes only where ALLOWED lets its layer go; mtl_core never imports streamlit, app or app_pages
- every module file stays under MAX_LINES lines (Alembic's migrations excepted)
- README.md's Layout section names every subpackage of mtl_core/ and app/, every module in them and the page scripts
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.helpers import ROOT
from tests.helpers.source_tree import module_name, package_of, python_files, resolve_from

SCANNED = ["mtl_core", "app", "app_pages", "streamlit_app.py"]
MIGRATIONS = "mtl_core/store/migrations"  # Alembic's generated scripts: not part of the layering or size rules
PAGE_PACKAGES = ["app.predict", "app.review", "app.train", "app.models", "app.data", "app.lab"]

# Which layer a module is in: the longest dotted prefix listed here wins. The bare package names in EXACT only
# match themselves (mtl_core/__init__.py is vocabulary, mtl_core.something_new is in no layer until listed).
LAYER_OF = {
    "mtl_core": "vocabulary", "mtl_core.types": "vocabulary", "mtl_core.tasks": "vocabulary",
    "mtl_core.progress": "vocabulary", "mtl_core.workspace": "vocabulary", "mtl_core.__main__": "__main__",
    **{f"mtl_core.{p}": p for p in
       ["data", "model", "eval", "serve", "train", "lab", "rounds", "store", "review", "ops", "cli"]},
    "app": "app", "app.components": "app.components", "app.shared": "app.shared",
    **{p: p for p in PAGE_PACKAGES},
    "app_pages": "app_pages", "streamlit_app": "app_pages",
    "tests": "tests", "bench": "bench", "scripts": "scripts",  # never imported by shipped code
    "streamlit": "streamlit",  # the one third-party package with a rule: the library never imports it
}
EXACT = {"mtl_core", "app"}


def _upto(*layers: str) -> set[str]:
    return {"vocabulary", *layers}


CORE = _upto("data", "model", "eval", "serve", "train", "lab", "rounds", "store", "review", "ops")  # all but cli
UI = CORE | {"app", "app.components", "app.shared", "streamlit"}
ALLOWED: dict[str, set[str]] = {
    "vocabulary": _upto(),
    "__main__": _upto("cli"),
    "data": _upto("data"),
    "model": _upto("data", "model"),
    "eval": _upto("data", "model", "eval"),
    "serve": _upto("data", "model", "serve"),  # eval and serve never import each other
    "train": _upto("data", "model", "eval", "serve", "train"),
    "lab": _upto("data", "model", "eval", "serve", "train", "lab"),  # experiments over training configs
    "rounds": _upto("data", "model", "eval", "serve", "train", "rounds", "store"),
    "store": _upto("data", "store"),
    "review": _upto("data", "model", "eval", "serve", "store", "review"),
    "ops": CORE,
    "cli": CORE | {"cli"},
    "app": UI,
    "app.components": UI,  # components and shared never import a page's package
    "app.shared": UI,
    **{p: UI | set(PAGE_PACKAGES) for p in PAGE_PACKAGES},
    "app_pages": UI | set(PAGE_PACKAGES),  # page scripts: app and mtl_core only, never each other
}

MAX_LINES = 300
LONG_MODULES: dict[str, str] = {}  # relative path -> why it may be longer (none today)


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name; None for third-party modules (and unlisted project ones, see below)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYER_OF and (prefix not in EXACT or n == len(parts)):
            return LAYER_OF[prefix]
    return None


def imported_modules(tree: ast.Module, package: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import anywhere in the tree. `from p import x` names p.x when that is a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(node, package)
            found += [(node.lineno, f"{base}.{a.name}" if f"{base}.{a.name}" in known else base) for a in node.names]
    return list(dict.fromkeys(found))


def import_problems(source: str, filename: str, known: set[str] = frozenset()) -> list[str]:
    """Every import in `source` (the file at `filename`, relative to the repository) its layer does not allow."""
    layer = layer_of(module_name(filename))
    if layer not in ALLOWED:
        return [f"{filename}: in no layer (add its package to LAYER_OF and ALLOWED in tests/test_layers.py)"]
    allowed = ALLOWED[layer]
    problems = []
    for line, target in imported_modules(ast.parse(source, filename=filename), package_of(filename), known):
        target_layer = layer_of(target)
        top = target.split(".")[0]
        if target_layer is None and top in ("mtl_core", "app"):
            problems.append(f"{filename}:{line} imports {target}, which is in no layer")
        elif target_layer is not None and target_layer not in allowed:
            problems.append(f"{filename}:{line} imports {target} "
                            f"({layer} may import: {', '.join(sorted(allowed - {'streamlit'}))})")
    return problems


def _scanned() -> dict[str, str]:
    """Relative path -> source of every scanned file outside the migrations."""
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in python_files(SCANNED)
            if not str(p.relative_to(ROOT)).startswith(MIGRATIONS)}


def test_every_import_follows_the_layers():
    files = _scanned()
    assert len(files) > 90 and "streamlit_app.py" in files and "app_pages/data.py" in files
    known = {module_name(f) for f in files}
    problems = [p for name, source in files.items() for p in import_problems(source, name, known)]
    assert problems == [], "\n" + "\n".join(problems)


# --- the checker itself --------------------------------------------------------------------------------------

PLANTED = """\
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .checkpoint import load

if TYPE_CHECKING:
    from mtl_core.store.db import Sessions


def later():
    from ..train import loop
    import streamlit
"""


def test_planted_upward_imports_are_named_with_their_line():
    known = {"mtl_core.model.checkpoint", "mtl_core.train.loop"}
    problems = import_problems(PLANTED, "mtl_core/model/registry.py", known)
    assert [p.split(" (")[0] for p in problems] == [
        "mtl_core/model/registry.py:10 imports mtl_core.store.db",  # under TYPE_CHECKING
        "mtl_core/model/registry.py:14 imports mtl_core.train.loop",  # relative, inside a function
        "mtl_core/model/registry.py:15 imports streamlit",
    ]
    assert "(model may import: data, model, vocabulary)" in problems[0]


def test_planted_package_tree_is_checked(tmp_path):
    """A whole file tree on disk, walked like the real one: a serve module reaching for eval is reported."""
    bad = tmp_path / "mtl_core" / "serve" / "explain.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("import json\nfrom mtl_core import tasks\nfrom ..eval.metrics import evaluate\n")
    (tmp_path / "mtl_core" / "eval").mkdir()
    (tmp_path / "mtl_core" / "eval" / "metrics.py").write_text("from ..serve import explain\n")
    files = {str(p.relative_to(tmp_path)): p.read_text() for p in sorted(tmp_path.rglob("*.py"))}
    known = {module_name(f) for f in files}
    problems = [p.split(" (")[0] for f, s in files.items() for p in import_problems(s, f, known)]
    assert problems == ["mtl_core/eval/metrics.py:1 imports mtl_core.serve.explain",
                        "mtl_core/serve/explain.py:3 imports mtl_core.eval.metrics"]


@pytest.mark.parametrize(("source", "filename"), [
    ("from app.predict.view import render_single", "app/components/results.py"),
    ("from ..review import service", "app/shared/services.py"),
    ("from app.shared import services", "mtl_core/serve/predictor.py"),
    ("import app_pages.review", "app/review/view.py"),
    ("from mtl_core.cli.main import main", "app/train/service.py"),
    ("from mtl_core.store.db import open_store", "mtl_core/data/prepare.py"),
    ("from mtl_core.rounds.config import RoundConfig", "mtl_core/train/loop.py"),
    ("from tests.helpers import ROOT", "mtl_core/model/testing.py"),
    ("from mtl_core.newpkg import x", "mtl_core/ops/worker.py"),
])
def test_each_rule_catches_its_violation(source, filename):
    assert import_problems(source, filename), (filename, source)


@pytest.mark.parametrize(("source", "filename"), [
    ("from mtl_core.tasks import load_task_file\nimport numpy", "mtl_core/data/prepare.py"),
    ("from . import types", "mtl_core/tasks.py"),
    ("from mtl_core.store.db import open_store", "mtl_core/rounds/finetune.py"),
    ("from app.train import service\nimport streamlit as st", "app/models/view.py"),
    ("from app.review.view import render_review_page", "app_pages/review.py"),
    ("from mtl_core.cli.main import main", "mtl_core/__main__.py"),
])
def test_allowed_imports_pass(source, filename):
    assert import_problems(source, filename) == []


# --- size and documentation ----------------------------------------------------------------------------------


def test_every_module_is_short():
    long = {name: source.count("\n") + 1 for name, source in _scanned().items()
            if source.count("\n") + 1 >= MAX_LINES and name not in LONG_MODULES}
    assert long == {}, f"split these modules (or list them with a reason in LONG_MODULES): {long}"


def _layout_tree() -> list[str]:
    """The lines of the first code block of README.md's Layout section (the tree)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    return section.split("```")[1].splitlines()


def _entries(lines: list[str], indent: int) -> dict[str, str]:
    """{'data': its line and continuation lines, ...} for the entries `name/` indented by `indent` spaces;
    an entry's text runs until the next line indented as little as it."""
    entries: dict[str, str] = {}
    current = None
    for line in lines:
        depth = len(line) - len(line.lstrip())
        if depth <= indent and line.strip():
            m = re.match(rf" {{{indent}}}([\w.]+)/", line)
            current = m.group(1) if m and depth == indent else None
            if current:
                entries[current] = ""
        if current:
            entries[current] += line + "\n"
    return entries


@pytest.mark.parametrize("top", ["mtl_core", "app", "app_pages"])
def test_readme_layout_names_every_subpackage_and_module(top):
    """Each subpackage has its own line (`  name/ ...`) naming its modules; top-level modules are named too."""
    block = _entries(_layout_tree(), 0).get(top, "")
    lines = block.splitlines()[1:]
    subpackages = _entries(lines, min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0))
    missing = []
    for init in sorted((ROOT / top).glob("*/__init__.py")):
        name = init.parent.name
        if name not in subpackages:
            missing.append(f"{top}/{name}/")
        missing += [f"{top}/{name}/{m.name}" for m in sorted(init.parent.glob("*.py"))
                    if m.stem != "__init__" and not re.search(rf"\b{m.stem}\b", subpackages.get(name, ""))]
    missing += [f"{top}/{m.name}" for m in sorted((ROOT / top).glob("*.py"))
                if m.stem != "__init__" and not re.search(rf"\b{m.stem}\b", block)]
    assert missing == [], f"README.md's Layout section does not name: {missing}"
