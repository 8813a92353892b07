"""The docs name only what exists (the way datasette and sqlite-utils test their docs).

* every ``PAPERS_*`` setting named in README.md and docs/*.md is a field of
  :class:`indexer.settings.Settings` (or one of :data:`NOT_SETTINGS`, read by something else);
* every `papers …` command line in them names real subcommands and options;
* every backquoted ``module.name`` reference in docs/architecture.md resolves to a module,
  class, function, method or attribute of the code (read with ``ast``, nothing imported);
* docs/architecture.md's map of packages and subsystems is the table tests/test_layering.py checks.

Why: docs/architecture.md documented ``fusion.hybrid(..., coverage=)`` and
``lexical_coverage`` long after they were gone (issue #16); a renamed setting or option
would mislead an operator the same way.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click

from tests.test_layering import GROUP_MAY_IMPORT, GROUPS, MODULES, PACKAGES

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ARCHITECTURE = REPO / "docs" / "architecture.md"
#: PAPERS_* names in the docs that are not settings of the application, and who reads them
NOT_SETTINGS = {"PAPERS_PORT": "docker-compose.yml: the host port the container is published on"}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- settings ------------------------------------------------------------------------------

def test_documented_settings_exist():
    from indexer.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    known = {prefix + name.upper() for name in Settings.model_fields} | set(NOT_SETTINGS)
    bad = sorted({f"{p.name}: {name}" for p in DOCS for name in re.findall(r"\bPAPERS_[A-Z0-9_]*[A-Z0-9]", _text(p))
                  if name not in known})
    assert not bad, "documented settings that indexer/settings.py does not have:\n" + "\n".join(bad)


def test_not_settings_are_really_read_where_they_say():
    for name, where in NOT_SETTINGS.items():
        assert name in _text(REPO / where.split(":")[0])


# -- commands ------------------------------------------------------------------------------

def command_lines(text: str) -> list[str]:
    """`papers …` in backquotes, and lines of code blocks that start with ``papers ``."""
    found = re.findall(r"`(papers(?: [^`]*)?)`", text)
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif in_code and line.strip().startswith("papers "):
            found.append(line.split(" #")[0].strip())
    return found


def check_command(line: str) -> str | None:
    """Why ``line`` does not name a real `papers` command and its options (None when it does)."""
    from service.cli import cli

    try:
        words = shlex.split(line.replace("…", " "))[1:]
    except ValueError:
        words = line.split()[1:]
    command: click.Command = cli
    options = {o for p in cli.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help", "--version"}
    for word in words:
        word = word.strip("[]")
        if not word:
            continue
        if word.startswith("-") and len(word) > 1:
            name = word.split("=")[0]
            if name not in options and not name.lstrip("-").isdigit():
                return f"{command.name} has no option {name}"
        elif isinstance(command, click.Group) and re.fullmatch(r"[a-z][a-z0-9-]*", word):
            sub = command.commands.get(word)
            if sub is None:
                return f"{command.name} has no subcommand {word!r}"
            command = sub
            options |= {o for p in sub.params for o in (*p.opts, *p.secondary_opts)}
        elif isinstance(command, click.Group):
            return None  # "jsonl/kaggle", "retrieval|related": shorthand for several
    return None


def test_documented_commands_and_options_exist():
    bad = sorted({f"{p.name}: `{line}`: {why}" for p in DOCS for line in command_lines(_text(p))
                  if (why := check_command(line))})
    assert not bad, "documented commands that `papers` does not have:\n" + "\n".join(bad)


def test_the_command_checker_rejects_what_does_not_exist():
    assert check_command("papers serve --workers 2") is None
    assert check_command("papers eval retrieval DIR --mode bm25 --json") is None
    assert check_command("papers -v nightly --dry-run") is None
    assert "no subcommand 'serv'" in check_command("papers serv")
    assert "no option --threads" in check_command("papers serve --threads 2")
    assert "no subcommand 'retrival'" in check_command("papers eval retrival DIR")


# -- code references in the architecture doc ------------------------------------------------

def _members(tree: ast.AST) -> dict[str, ast.AST | None]:
    """Names a module or class body defines: functions, classes, assignments, annotated
    fields, imports (re-exports), and ``self.x`` attributes set in methods."""
    out: dict[str, ast.AST | None] = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out[node.name] = node
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                            and sub.value.id == "self" and isinstance(sub.ctx, ast.Store)):
                        out.setdefault(sub.attr, None)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out[name.id] = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = None
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                out[(alias.asname or alias.name).split(".")[0]] = None
        elif isinstance(node, ast.If | ast.Try):
            out.update(_members(node))
    return out


TREES = {name: ast.parse(_text(path)) for name, path in MODULES.items()}
CLASSES = {node.name: node for tree in TREES.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}


_MISSING = object()
#: indexer's subpackages, whose modules the docs may name without the package
SUBPACKAGES = ("ingest", "text", "lexical", "dense", "search", "pipeline", "evaluation")


def _resolve_in(node: ast.AST, parts: list[str]):
    """The node ``parts`` name inside ``node`` (None for an attribute or re-export, whose own
    members are not followed), or ``_MISSING``."""
    for part in parts:
        if node is None:
            return None
        members = _members(node)
        if isinstance(node, ast.ClassDef):  # inherited members of project classes
            for base in node.bases:
                if isinstance(base, ast.Name) and base.id in CLASSES:
                    members = {**_members(CLASSES[base.id]), **members}
        if part not in members:
            return _MISSING
        node = members[part]
    return node


def target(ref: str):
    """What ``ref`` (``a.b.c``) names: a module, or a module then members, under
    indexer/service/benchmarks (the package prefix may be left out), or a project class then
    members; ``_MISSING`` when nothing."""
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        for module in (head, f"indexer.{head}", f"service.{head}",
                       *(f"indexer.{sub}.{head}" for sub in SUBPACKAGES), f"benchmarks.{head}"):
            if module in TREES:
                return _resolve_in(TREES[module], parts[i:])
    return _resolve_in(CLASSES[parts[0]], parts[1:]) if parts[0] in CLASSES else _MISSING


def resolves(ref: str) -> bool:
    return target(ref) is not _MISSING


def accepts(node, keyword: str) -> bool:
    """May ``keyword=`` be passed to the function or class ``node``?"""
    if isinstance(node, ast.ClassDef):
        init = _members(node).get("__init__")
        if not isinstance(init, ast.FunctionDef):
            return keyword in _members(node)  # a dataclass: its fields
        node = init
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return True
    a = node.args
    return a.kwarg is not None or keyword in {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}


def _short_names() -> set[str]:
    names = set()
    for module in MODULES:
        bits = module.split(".")
        names |= {".".join(bits[i:]) for i in range(len(bits))}
    return names


def _spans(text: str) -> list[str]:
    """Inline code spans (they may wrap lines), fenced blocks left out."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`]+)`", text)


_REF = re.compile(r"(?<![\w./-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")


def code_references(text: str) -> list[str]:
    """Dotted names in backquotes whose first part is a project module or class."""
    firsts = {n.split(".")[0] for n in _short_names()} | set(CLASSES)
    refs = []
    for span in _spans(text):
        for ref in _REF.findall(span):
            if ref.split(".")[0] in firsts and not re.search(r"\.(py|md|json|npy|txt|tsv|gz)$", ref):
                refs.append(ref)
    return refs


def keyword_arguments(text: str) -> list[tuple[str, str]]:
    """(reference, keyword) for every ``ref(..., keyword=...)`` in backquotes."""
    found = []
    for span in _spans(text):
        for m in _REF.finditer(span):
            if span[m.end():m.end() + 1] != "(":
                continue
            depth, args = 0, ""
            for ch in span[m.end():]:
                depth += {"(": 1, ")": -1}.get(ch, 0)
                args += ch
                if depth == 0:
                    break
            inner = args[1:-1]
            while re.search(r"\([^()]*\)|\[[^\[\]]*\]", inner):  # nested calls and lists are not ours
                inner = re.sub(r"\([^()]*\)|\[[^\[\]]*\]", "", inner)
            found += [(m.group(1), kw) for kw in re.findall(r"(?:^|[,(*]\s*)(\w+)=", inner)]
    return found


def test_architecture_doc_names_only_what_exists():
    refs = code_references(_text(ARCHITECTURE))
    assert len(refs) > 50, "the reference reader found almost nothing: is it still reading the doc?"
    bad = sorted({r for r in refs if not resolves(r)})
    bad += sorted({f"{r}(..., {kw}=)" for r, kw in keyword_arguments(_text(ARCHITECTURE))
                   if resolves(r) and not accepts(target(r), kw)})
    assert not bad, "docs/architecture.md names what the code does not have:\n" + "\n".join(bad)


def test_the_reference_checker_rejects_what_does_not_exist():
    assert resolves("indexer.ingest.store.upsert_papers") and resolves("store.upsert_papers")
    assert resolves("BM25Index.open") and resolves("SearchEngine.search") and resolves("fusion.fuse")
    assert not resolves("fusion.lexical_coverage") and not resolves("BM25Index.coauthored")
    doc = "`fusion.hybrid(lex, dense, coverage=fusion.lexical_coverage(x),\n dense_model=None)` `os.replace`"
    assert code_references(doc) == ["fusion.hybrid", "fusion.lexical_coverage"]
    assert keyword_arguments(doc) == [("fusion.hybrid", "coverage"), ("fusion.hybrid", "dense_model")]
    assert not accepts(target("fusion.hybrid"), "coverage") and accepts(target("fusion.hybrid"), "dense_model")


# -- the map --------------------------------------------------------------------------------

def _table(text: str, heading: str) -> list[list[str]]:
    """Rows (cells) of the first Markdown table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in row.strip("|").split("|")] for row in lines[start + 2:end]]


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([\w.]+)`", cell))


def test_the_package_map_is_the_layering_table():
    rows = _table(_text(ARCHITECTURE), "## The map: packages")
    documented = {next(iter(_names(r[0]))): _names(r[-1]) for r in rows}
    assert documented == PACKAGES


def test_the_subsystem_map_is_the_layering_table():
    rows = _table(_text(ARCHITECTURE), "## The map: indexer's subsystems")
    modules = {r[0]: {f"indexer.{m}" for m in _names(r[1])} for r in rows}
    may_import = {r[0]: _names(r[-1]) for r in rows}
    groups = {g: set(ps) for g, ps in GROUPS.items()}
    assert modules == groups
    assert may_import == {g: GROUP_MAY_IMPORT[g] - {"package"} for g in groups}
