"""The shipped Python code as files and syntax trees, for the static tests (test_security_static, test_layers)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from tests.helpers import ROOT


def python_files(entries: Iterable[str]) -> list[Path]:
    """Every .py file of `entries` (folders walked recursively, plain files as they are), relative to ROOT."""
    files = []
    for entry in entries:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def module_name(relpath: str | Path) -> str:
    """'mtl_core.model.registry' for mtl_core/model/registry.py, 'mtl_core.model' for its __init__.py."""
    parts = list(Path(relpath).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(relpath: str | Path) -> str:
    """The package a file's relative imports start from: its folder, dotted ('' for a file at the root)."""
    return ".".join(Path(relpath).parent.parts)


def resolve_from(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of `from X import ...`: `from ..a import b` in package p.q.r is p.a."""
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])
