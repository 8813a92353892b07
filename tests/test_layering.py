"""The allowed import graph, stated as data and checked over every module with ``ast``.

Why a table: docs/architecture.md draws the same graph for newcomers (tests/test_docs.py
checks that the doc's table matches this one), and a rule that lives in a table is
extended by editing a line, not by writing a test. Every import counts: module-level,
function-local (the ones that hide the graph) and ``TYPE_CHECKING`` ones; relative
imports are resolved.

Three tables:

* :data:`PACKAGES`: which top-level package may import which (most specific prefix wins).
* :data:`GROUPS` and :data:`GROUP_MAY_IMPORT`: indexer's subsystems and which may import
  which: one package each (``indexer/text/`` ...), plus the shared modules at the top
  of ``indexer/`` (``core``).
* :data:`PENDING`: edges that break a rule today, each with its reason. Issue #16's other
  parts remove them; :func:`test_pending_exceptions_still_occur` fails when one is gone,
  so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the project's top-level packages (tests are not checked: they may import anything)
ROOTS = ("indexer", "service", "benchmarks", "migrations")

#: importer (a module-name prefix; the longest matching one applies) -> project packages it may import
PACKAGES: dict[str, set[str]] = {
    "indexer": {"indexer"},
    "service": {"indexer", "service"},
    "service.commands.bench": {"indexer", "service", "benchmarks"},  # `papers bench` runs the suite
    "benchmarks": {"indexer", "benchmarks"},  # the service is driven as a program (`papers serve`)
    "migrations": {"indexer", "migrations"},
}

#: indexer's subsystems: group -> module-name prefixes it holds (every indexer module is in one)
GROUPS: dict[str, tuple[str, ...]] = {
    # the shared vocabulary, at the top of indexer/: rows, settings, errors, the manifest and
    # the paths of the published artifacts, the database, run bookkeeping
    "core": ("indexer.models", "indexer.settings", "indexer.errors", "indexer.storage_errors",
             "indexer.manifest", "indexer.paths", "indexer.atomic", "indexer.embed_progress", "indexer.db",
             "indexer.migrate", "indexer.runs", "indexer.batching", "indexer.jsonlines"),
    # one package per subsystem below
    "ingest": ("indexer.ingest",),
    "text": ("indexer.text",),
    "lexical": ("indexer.lexical",),
    "dense": ("indexer.dense",),
    "search": ("indexer.search",),  # ranking over both retrievers: SearchEngine and what it composes
    "pipeline": ("indexer.pipeline",),
    # `papers eval`: builds throw-away indexes and searches them, so it sits above the pipeline
    "evaluation": ("indexer.evaluation",),
}
_BELOW_PIPELINE = {"core", "ingest", "text", "lexical", "dense", "search"}
#: group -> groups it may import (its own group always)
GROUP_MAY_IMPORT: dict[str, set[str]] = {
    "package": set(),
    "core": {"package"},
    "ingest": {"package", "core"},
    "text": {"package", "core"},  # never lexical or dense
    "lexical": {"package", "core", "ingest", "text"},  # ingest: arXiv id rules (records)
    "dense": {"package", "core", "ingest", "text"},  # ingest: paper rows to embed (store)
    "search": {"package", "core", "ingest", "text", "lexical", "dense"},
    "pipeline": {"package", *_BELOW_PIPELINE},  # nothing below the pipeline imports it
    "evaluation": {"package", *_BELOW_PIPELINE, "pipeline"},
}

#: modules that serve reads (`papers serve`, search, keywords from the index): none may
#: import ``indexer.pipeline.build``, the write side (prefixes; :data:`WRITERS` are taken out)
READ_PATH = ("service", *(p for g in sorted(_BELOW_PIPELINE) for p in GROUPS[g]))
WRITERS = ("service.commands.build",)

#: (importer, imported) -> why the edge still breaks a rule (pending #16: the other parts remove them)
PENDING: dict[tuple[str, str], str] = {}


# -- the graph -----------------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for root in ROOTS for p in sorted((REPO / root).rglob("*.py"))}


MODULES = project_modules()


def imports(name: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, module-level?) for every project import in ``path``;
    ``from pkg import mod`` yields ``pkg.mod`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node: ast.AST, top: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            here = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                here = False  # a dependency for types only: no cycle at run time
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, here
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                yield module, child.lineno, here
                for alias in child.names:
                    if f"{module}.{alias.name}" in MODULES:
                        yield f"{module}.{alias.name}", child.lineno, here
            yield from walk(child, here)

    for module, line, top in walk(ast.parse(path.read_text(encoding="utf-8")), True):
        if module.split(".")[0] in ROOTS:
            yield module, line, top


EDGES = [(name, module, line, top) for name, path in MODULES.items() for module, line, top in imports(name, path)]


def _longest(name: str, prefixes) -> str | None:
    hits = [p for p in prefixes if name == p or name.startswith(p + ".")]
    return max(hits, key=len) if hits else None


def group_of(name: str) -> str | None:
    """The subsystem of an indexer module ("package" for indexer/__init__.py itself)."""
    if name == "indexer":
        return "package"
    best = _longest(name, [p for ps in GROUPS.values() for p in ps])
    return next((g for g, ps in GROUPS.items() if best in ps), None)


def _where(name: str, line: int) -> str:
    return f"{MODULES[name].relative_to(REPO)}:{line}"


def violations(rule) -> list[tuple[str, str, str]]:
    """(importer, imported, where) of every edge ``rule(importer, imported)`` rejects."""
    return [(a, b, _where(a, line)) for a, b, line, _ in EDGES if a != b and not rule(a, b)]


# -- the rules -----------------------------------------------------------------------------

def package_rule(a: str, b: str) -> bool:
    return b.split(".")[0] in PACKAGES[_longest(a, PACKAGES) or a.split(".")[0]]


def group_rule(a: str, b: str) -> bool:
    if not (a.startswith("indexer") and b.startswith("indexer")):
        return True
    ga, gb = group_of(a), group_of(b)
    return ga == gb or gb in GROUP_MAY_IMPORT[ga]


def read_path_rule(a: str, b: str) -> bool:
    on_read_path = _longest(a, READ_PATH) is not None and _longest(a, WRITERS) is None
    return not (on_read_path and (b == "indexer.pipeline.build" or b.startswith("indexer.pipeline.build.")))


def _report(found: list[tuple[str, str, str]], what: str) -> list[str]:
    return [f"{where}: {a} imports {b} ({what})" for a, b, where in found if (a, b) not in PENDING]


def test_every_indexer_module_is_in_a_group():
    lost = [n for n in MODULES if n.startswith("indexer") and group_of(n) is None]
    assert not lost, f"add these modules to GROUPS in tests/test_layering.py (and to docs/architecture.md): {lost}"


def test_packages_import_only_what_the_table_allows():
    """indexer never imports service; benchmarks never import service; only `papers bench` imports benchmarks."""
    bad = _report(violations(package_rule), "see PACKAGES")
    assert not bad, "layering rule broken:\n" + "\n".join(bad)


def test_indexer_subsystems_import_only_what_the_table_allows():
    """text never imports lexical or dense; nothing below the pipeline imports it."""
    bad = _report(violations(group_rule), "see GROUP_MAY_IMPORT")
    assert not bad, "layering rule broken:\n" + "\n".join(bad)


def test_no_read_path_module_imports_build():
    bad = _report(violations(read_path_rule), "the read side must not import the write side")
    assert not bad, "\n".join(bad)


def test_pending_exceptions_still_occur():
    """An exception that no longer occurs is deleted from PENDING, so the list only shrinks."""
    rules = (package_rule, group_rule, read_path_rule)
    live = {(a, b) for rule in rules for a, b, _ in violations(rule)}
    gone = sorted(set(PENDING) - live)
    assert not gone, f"these edges are gone or allowed now: delete them from PENDING: {gone}"


def cycles(module_level_only: bool) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {n: set() for n in MODULES}
    for a, b, _, top in EDGES:
        if b in MODULES and a != b and (top or not module_level_only):
            graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    assert cycles(module_level_only=True) == []


def test_no_import_cycle_even_through_function_local_imports():
    assert cycles(module_level_only=False) == []


def test_the_checker_sees_local_relative_and_type_checking_imports(tmp_path):
    """The rules are only as good as the import reader: it must see every kind of import."""
    src = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import indexer.errors\n"
        "from .text import tokenizer\n"
        "if TYPE_CHECKING:\n"
        "    from indexer.settings import Settings\n"
        "def f():\n"
        "    from service.sizing import default_workers\n"
    )
    probe = tmp_path / "zz_probe.py"  # read as if it were indexer/zz_probe.py
    probe.write_text(src)
    found = {(m, top) for m, _, top in imports("indexer.zz_probe", probe)}
    assert ("indexer.errors", True) in found and ("indexer.text.tokenizer", True) in found
    assert ("indexer.settings", False) in found and ("service.sizing", False) in found
    assert not package_rule("indexer.zz_probe", "service.sizing")
    assert not package_rule("benchmarks.bench_service", "service.sizing")
    assert package_rule("service.commands.bench", "benchmarks.harness") and not package_rule("service.api", "benchmarks")
    assert not group_rule("indexer.text.tokenizer", "indexer.lexical.bm25") and not group_rule("indexer.dense.embeddings", "indexer.pipeline.build")
    assert group_of("indexer.brand_new") is None and group_of("indexer.ingest.brand_new") == "ingest"
    assert not read_path_rule("service.api", "indexer.pipeline.build") and read_path_rule("service.commands.build", "indexer.pipeline.build")
