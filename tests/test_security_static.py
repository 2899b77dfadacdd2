"""Static safety rules over the shipped Python code (an AST walk, so strings and comments never match):

- no pickle.load / pickle.loads / pickle.Unpickler, and no yaml.load without a safe loader
- every torch.load(...) passes weights_only=True
- no eval(...) / exec(...)
- unsafe_allow_html=True only in files that import the escaping helpers of app/components/html.py
- SQLAlchemy text(...) / exec_driver_sql(...) only with a literal string (no f-string, %, + or .format)
- in files that import streamlit, the text of a Markdown-rendering element (captions, alerts, labels, help,
  radio options...) is a literal or goes through md_literal (tests/helpers/markdown_rule.py)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.markdown_rule import markdown_problems, other_modules
from tests.helpers.source_tree import package_of, python_files, resolve_from

SCANNED = ["mtl_core", "app", "app_pages", "streamlit_app.py", "bench", "scripts"]
HTML_HELPERS = "components.html"  # app/components/html.py, imported absolutely or relatively


def _dotted(node: ast.AST) -> str:
    """'torch.load' for torch.load, 'text' for text, '' for anything not a plain dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _keyword_is_true(call: ast.Call, name: str) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def _sqlalchemy_text_names(tree: ast.Module) -> set[str]:
    """Names under which this file can call sqlalchemy's text(): `from sqlalchemy import text [as x]`, `sa.text`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "text"}
        elif isinstance(node, ast.Import):
            names |= {f"{alias.asname or alias.name}.text" for alias in node.names
                      if alias.name.startswith("sqlalchemy")}
    return names


def _imports_html_helpers(tree: ast.Module, filename: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = resolve_from(node, package_of(filename))
            names = {f"{module}.{alias.name}" for alias in node.names}
            if module.endswith(HTML_HELPERS) or any(n.endswith(HTML_HELPERS) for n in names):
                return True
    return False


def _is_literal_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def call_problems(call: ast.Call, text_names: set[str]) -> list[str]:
    name = _dotted(call.func)
    if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "cPickle.load", "cPickle.loads"):
        return [f"{name}: unpickling runs arbitrary code"]
    if name == "torch.load" and not _keyword_is_true(call, "weights_only"):
        return ["torch.load without weights_only=True"]
    if name == "yaml.load" and not any(k.arg == "Loader" and "Safe" in _dotted(k.value) for k in call.keywords):
        return ["yaml.load without a SafeLoader (use yaml.safe_load)"]
    if name in ("eval", "exec"):
        return [f"{name}(): never evaluate strings as code"]
    is_sql = name in text_names or name.endswith(".exec_driver_sql")
    if is_sql and call.args and not _is_literal_string(call.args[0]):
        return [f"{name}() with a built string ({type(call.args[0]).__name__}): use bound parameters"]
    return []


def _imports_streamlit(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == "streamlit" for a in n.names)
               or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "streamlit"
               for n in ast.walk(tree))


def file_problems(source: str, filename: str = "<snippet>") -> list[str]:
    """Every rule broken in `source`, as 'file:line: what'."""
    tree = ast.parse(source, filename=filename)
    text_names, html_ok = _sqlalchemy_text_names(tree), _imports_html_helpers(tree, filename)
    modules = other_modules(tree) if _imports_streamlit(tree) else None
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pickle":
            bad = [a.name for a in node.names if a.name in ("load", "loads", "Unpickler")]
            problems += [f"{filename}:{node.lineno}: from pickle import {', '.join(bad)}"] if bad else []
        if not isinstance(node, ast.Call):
            continue
        problems += [f"{filename}:{node.lineno}: {why}" for why in call_problems(node, text_names)]
        if modules is not None:
            problems += [f"{filename}:{node.lineno}: {why}" for why in markdown_problems(node, modules)]
        if _keyword_is_true(node, "unsafe_allow_html") and not html_ok:
            problems.append(f"{filename}:{node.lineno}: unsafe_allow_html=True in a file that does not import "
                            "the escaping helpers of app/components/html.py")
    return problems


def test_scanned_code_follows_the_rules():
    files = python_files(SCANNED)
    assert len(files) > 40 and ROOT / "streamlit_app.py" in files
    problems = [p for path in files for p in file_problems(path.read_text(encoding="utf-8"),
                                                             str(path.relative_to(ROOT)))]
    assert problems == []


def test_relative_imports_resolve_against_the_file():
    snippet = "from .html import esc\nst.markdown(esc(t), unsafe_allow_html=True)"
    assert file_problems(snippet, "app/components/results.py") == []
    assert file_problems(snippet, "app/other/view.py")  # app.other.html is not the escaping helper


def test_this_file_does_not_flag_itself():
    assert file_problems(Path(__file__).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("snippet", [
    "import pickle\npickle.loads(data)",
    "import pickle\npickle.load(open('f', 'rb'))",
    "from pickle import loads",
    "import torch\ntorch.load('w.pt')",
    "import torch\ntorch.load('w.pt', weights_only=False)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "eval(user_text)",
    "exec(compile(src, 'x', 'exec'))",
    "import streamlit as st\nst.markdown(user_text, unsafe_allow_html=True)",
    "from sqlalchemy import text\nsession.execute(text(f'SELECT * FROM t WHERE a = {a}'))",
    "from sqlalchemy import text as sql\nsession.execute(sql('DELETE FROM t WHERE a = %s' % a))",
    "import sqlalchemy as sa\nsa.text('SELECT ' + column)",
    "conn.exec_driver_sql('DROP TABLE {}'.format(name))",
])
def test_each_rule_catches_its_violation(snippet):
    assert file_problems(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load('w.pt', weights_only=True, map_location='cpu')",
    "import yaml\nyaml.safe_load(text)",
    "model.eval()",
    "from sqlalchemy import text\nsession.execute(text('SELECT * FROM t WHERE a = :a'), {'a': a})",
    "from .components.html import esc\nimport streamlit as st\nst.markdown(esc(t), unsafe_allow_html=True)",
    "from app.components.html import ner_html\nst.markdown(ner_html(t, s, c), unsafe_allow_html=True)",
    "from app.components import html\nst.markdown(html.esc(t), unsafe_allow_html=True)",
    "text = f'{a} {b}'\nlabel.text(f'{a}')",  # a variable called text, not sqlalchemy's
])
def test_safe_code_is_not_flagged(snippet):
    assert file_problems(snippet) == []


ST = "import streamlit as st\n"


@pytest.mark.parametrize("snippet", [
    "st.caption(f'{n:,} row(s) read from {upload.name}.')",
    "st.error(problem)",
    "st.sidebar.warning(str(exc))",
    "st.markdown('### ' + label)",
    "st.caption(' · '.join(parts))",
    "st.error(f'{value!r}')",
    "st.caption(f'{name:>10}')",  # not a numeric format: the value may be text
    "st.radio('Final label', list(range(3)), format_func=lambda i: format_value(options[i]))",
    "st.radio('Correct class', spec.labels, key='k')",  # radio options render Markdown
    "st.radio('Pool', user_pools, format_func=TITLES.get)",  # .get falls back to the user's option
    "cols[0].button(f'Activate {version}', key='k')",
    "st.checkbox('ok', key='k', help=tip)",
    "st.tabs(['Queue', name])",
    "with st.expander(f'Answers ({shown})'):\n    pass",
    "bar.progress(0.5, text=message)",
    "st.metric('Fixed', fixed)",
    "st.write(text)",
    "st.download_button(f'{task_title(name)} spans', data=b'', key='k')",
])
def test_markdown_rule_catches_user_text(snippet):
    assert file_problems(ST + snippet), snippet


@pytest.mark.parametrize("snippet", [
    "st.caption('Type or pick a text, then press **Predict**.')",
    "from app.components.text import md_literal\nst.caption(f'{n:,} row(s) read from {md_literal(name)}.')",
    "st.error(md_literal(problem))",
    "st.info(TRAIN_HELP)",  # our own constant
    "st.radio('Final label', list(range(3)), format_func=lambda i: md_literal(options[i]))",
    "st.radio('Correct class', spec.labels, format_func=md_literal)",
    "st.radio('Pool', list(POOL_TITLES), format_func=POOL_TITLES.get)",
    "st.radio('Strategy', STRATEGIES, format_func=str.capitalize)",
    "st.markdown(f\"**{md_title(name)}** · {len(spans)} entit{'y' if n == 1 else 'ies'}\")",
    "st.tabs(['Per label', f'Fixed ({n:,})'])",
    "st.metric('Corrections right', f'{right:,}/{total:,}', delta=right - old)",
    "st.caption('Left out: ' + ', '.join(map(md_literal, names)))",
    "st.selectbox('Task', names, format_func=task_title)",  # selectbox options are plain text
    "st.text(user_text)\nst.code(user_text)\nst.dataframe(frame)",
    "from app.review import service as rs\nrs.progress(sessions, annotator)",  # not st.progress
    "logger.error(message)\nhandle.write(text)",
    "from app.components.html import ner_html\nst.markdown(ner_html(t, s, c), unsafe_allow_html=True)",
])
def test_markdown_rule_passes_literal_text(snippet):
    assert file_problems(ST + snippet) == []


def test_markdown_rule_only_in_streamlit_files():
    assert file_problems("report.error(problem)") == []


def test_streamlit_magic_is_off():
    """No implicit rendering of bare expressions, and no concurrent ast.parse of scripts (see config.toml)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["magicEnabled"] is False
