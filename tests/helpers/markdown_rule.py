"""The Markdown rule of tests/test_security_static.py: user strings reach Markdown-rendering Streamlit
elements only through `md_literal` (app/components/text.py).

A call of a Markdown-rendering element (`st.caption(...)`, `cols[0].button(...)`, `st.sidebar.info(...)`,
...) in a file that imports streamlit must pass, for each of its text arguments, an expression that is
Markdown-safe:
- a literal (string, number, None), or an UPPER_CASE name / subscript of one (our own constants);
- `md_literal(...)`, `md_title(...)` (md_literal of a task title), `map(md_literal, ...)`, or a call
  that returns a number (len, int, float, round, abs, sum);
- an f-string whose parts are all safe, or formatted with a numeric spec (`{n:,}`, `{x:.2f}`, `{p:.0%}`);
- `a + b`, `a if c else b`, `a or b`, a list/tuple, or `"sep".join(...)` made of safe parts.
Radio, pills and segmented-control options render Markdown too: they need a safe `format_func`
(`md_literal`, a lambda returning a safe expression, or `CONSTANT.get` / a `str` method over safe options)
unless the options are literals. Calls with unsafe_allow_html=True are left to the HTML rule.
Not covered: calls through a variable (`show = st.info; show(x)`), which the app routes through md_literal itself.
"""

from __future__ import annotations

import ast
import re

BODY = {"markdown", "caption", "error", "warning", "info", "success", "toast", "title", "header", "subheader",
        "badge", "expander", "popover", "status", "spinner", "tabs", "button", "download_button", "link_button",
        "form_submit_button", "page_link", "checkbox", "toggle", "radio", "selectbox", "multiselect", "slider",
        "select_slider", "text_input", "text_area", "number_input", "date_input", "time_input", "file_uploader",
        "color_picker", "camera_input", "pills", "segmented_control", "metric"}
POSITIONS = {"metric": (0, 1), "progress": (1,), "write": None}  # None: every positional argument
TEXT_KEYWORDS = {"body", "label", "help", "text", "captions", "value"}
OPTION_MARKDOWN = {"radio", "pills", "segmented_control"}  # options render Markdown (selectbox's do not)
NOT_STREAMLIT = re.compile(r"^(logging|logger|log|warnings)$", re.IGNORECASE)
SAFE_CALLS = {"md_literal", "md_title", "len", "int", "float", "round", "abs", "sum"}  # md_title: md_literal'd
CONTAINERS = {"list", "tuple", "sorted"}
NUMERIC_SPEC = re.compile(r"[,_]|[bcdeEfFgGnoxX%]$")


def _root(node: ast.AST) -> str:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _called(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _constant_name(node: ast.AST) -> bool:
    name = node.value if isinstance(node, ast.Subscript) else node
    return isinstance(name, ast.Name) and name.id.isupper()


def is_md_safe(node: ast.AST, unsafe_names: frozenset[str] = frozenset()) -> bool:
    """Does `node` evaluate to text that renders literally as Markdown (see the module docstring)?"""
    def safe(n: ast.AST) -> bool:
        return is_md_safe(n, unsafe_names)

    if isinstance(node, ast.Constant):
        return True
    if _constant_name(node):
        return not (isinstance(node, ast.Name) and node.id in unsafe_names)
    if isinstance(node, ast.JoinedStr):
        return all(safe(part) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        spec = "".join(p.value for p in node.format_spec.values if isinstance(p, ast.Constant)) \
            if node.format_spec else ""
        return bool(NUMERIC_SPEC.search(spec)) or (node.conversion == -1 and safe(node.value))
    if isinstance(node, ast.Call):
        if _called(node.func) in SAFE_CALLS:
            return True
        if _called(node.func) in CONTAINERS:  # list(CONSTANT), sorted(...) of safe items
            return len(node.args) == 1 and not node.keywords and safe(node.args[0])
        if _called(node.func) == "map":  # map(md_literal, names)
            return bool(node.args) and _called(node.args[0]) in SAFE_CALLS
        is_join = isinstance(node.func, ast.Attribute) and node.func.attr == "join" and safe(node.func.value)
        return is_join and len(node.args) == 1 and safe(node.args[0])
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        return safe(node.elt)
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ast.Add) and safe(node.left) and safe(node.right)
    if isinstance(node, ast.IfExp):
        return safe(node.body) and safe(node.orelse)
    if isinstance(node, ast.BoolOp):
        return all(safe(v) for v in node.values)
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(safe(e) for e in node.elts)
    return False


def _safe_format_func(node: ast.AST, options: ast.AST | None) -> bool:
    """md_literal, a lambda returning a safe expression, a lookup in a constant (`TITLES.get`), or a str
    method (`str.capitalize`) applied to safe options."""
    if _called(node) == "md_literal":
        return True
    if isinstance(node, ast.Lambda):
        return is_md_safe(node.body, frozenset(a.arg for a in node.args.args))
    if isinstance(node, ast.Attribute) and node.attr == "get" and _constant_name(node.value):
        return options is not None and is_md_safe(options)  # .get falls back to the option itself
    is_str_method = isinstance(node, ast.Attribute) and _dotted_root(node) == "str"
    return is_str_method and options is not None and is_md_safe(options)


def _dotted_root(node: ast.Attribute) -> str:
    return node.value.id if isinstance(node.value, ast.Name) else ""


def other_modules(tree: ast.Module) -> set[str]:
    """Names this file binds to modules other than streamlit (`rs.progress(...)` is not `st.progress`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
                isinstance(node, ast.ImportFrom) and node.module == "streamlit"):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("streamlit")}
    return names


def markdown_problems(call: ast.Call, modules: set[str] = frozenset()) -> list[str]:
    """Why this call may render user text as live Markdown ([] when it cannot). `modules`: other_modules().

    Calls with unsafe_allow_html=True are left to the HTML rule (their HTML is built with esc)."""
    if not isinstance(call.func, ast.Attribute) or NOT_STREAMLIT.match(_root(call.func)) \
            or _root(call.func) in modules:
        return []
    name = call.func.attr
    html = any(k.arg == "unsafe_allow_html" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)
    if html or (name not in BODY and name not in POSITIONS) or (name == "write" and _root(call.func) != "st"):
        return []  # `write`: only st.write / st.sidebar.write (file.write is no element)
    positions = POSITIONS.get(name, (0,)) if name in POSITIONS else (0,)
    args = call.args if positions is None else [call.args[i] for i in positions if i < len(call.args)]
    args += [k.value for k in call.keywords if k.arg in TEXT_KEYWORDS and (k.arg != "value" or name == "metric")]
    problems = [f"{name}(): text argument `{ast.unparse(a)[:60]}` is not a literal or md_literal(...)"
                for a in args if not is_md_safe(a)]
    if name in OPTION_MARKDOWN:
        options = call.args[1] if len(call.args) > 1 else next(
            (k.value for k in call.keywords if k.arg == "options"), None)
        fmt = next((k.value for k in call.keywords if k.arg == "format_func"), None)
        if fmt is not None and not _safe_format_func(fmt, options):
            problems.append(f"{name}(): format_func must return md_literal(...) (options render Markdown)")
        elif fmt is None and options is not None and not (isinstance(options, (ast.List, ast.Tuple))
                                                          and is_md_safe(options)):
            problems.append(f"{name}(): options that are not literals need format_func=md_literal")
    return problems
