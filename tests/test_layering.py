"""DESIGN.md's layering, read from the source: the store knows nothing of HTTP or XML, the
publishers read the store and never the fetching side, nothing but the entry point imports
`cli`, and only the store talks to SQLite. Imports inside functions count too (a lazy import
is still a dependency), and so does what a module imports through the modules it imports."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import aggregator

PACKAGE = Path(aggregator.__file__).parent

# the fetching side: what a publisher must not reach, however indirectly
FETCH_SIDE = {
    "aggregator.fetch",
    "aggregator.parse",
    "aggregator.parse_fast",
    "aggregator.normalize",
    "aggregator.pipeline",
    "aggregator.poll_workers",
    "aggregator.discover",
    "aggregator.daemon",
    "aggregator.cli",
}
# HTTP and XML, by top-level package or module
HTTP_XML = {"requests", "urllib3", "http", "socket", "ssl", "lxml", "feedparser", "xml", "defusedxml"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


@cache
def _imports(name: str) -> frozenset[str]:
    """Every module `name` imports directly, anywhere in its body (`from x import y` counts as
    x, and as x.y when that is a module of ours)."""
    path = _modules()[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in _modules())
    return frozenset(out)


def _reached(name: str) -> dict[str, str]:
    """Every module `name` imports, directly or through modules of ours: module → the one of
    ours that imports it (to name the path in a failure)."""
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        for imported in _imports(current):
            if imported in seen:
                continue
            seen[imported] = current
            if imported in _modules():
                todo.append(imported)
    return seen


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_sees_the_package() -> None:
    """The check reads what it should: a module known to import others is seen doing so."""
    assert {"aggregator.store", "aggregator.publish", "aggregator.publish.feeds", "aggregator.cli"} <= _modules().keys()
    assert "aggregator.store" in _reached("aggregator.publish")
    assert "requests" in {_top(m) for m in _reached("aggregator.fetch")}


def test_the_store_knows_nothing_of_http_or_xml() -> None:
    reached = _reached("aggregator.store")
    wrong = sorted(f"{m} (imported by {by})" for m, by in reached.items() if _top(m) in HTTP_XML or m in FETCH_SIDE)
    assert not wrong, wrong


def test_publishers_read_the_store_not_the_fetching_side() -> None:
    publishers = [m for m in _modules() if m == "aggregator.publish" or m.startswith("aggregator.publish.")]
    wrong = sorted(
        f"{p}: {m} (imported by {by})" for p in publishers for m, by in _reached(p).items() if m in FETCH_SIDE
    )
    assert not wrong, wrong


def test_nothing_but_the_entry_point_imports_cli() -> None:
    importers = sorted(m for m in _modules() if "aggregator.cli" in _imports(m))
    assert importers == ["aggregator.start"], importers


def test_only_the_store_talks_to_sqlite() -> None:
    talkers = sorted(m for m in _modules() if any(_top(i) in ("sqlite3", "sqlite_utils") for i in _imports(m)))
    assert talkers == ["aggregator.store"], talkers
