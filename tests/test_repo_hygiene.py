"""Repository rules that review alone does not hold: checked on every test run.

* No SQL built by string formatting in indexer/ and service/: f-strings, ``%`` or
  ``.format`` / ``+`` into ``text()``, ``execute()``, ``exec_driver_sql()``, or into any
  string that reads as SQL. Bound parameters only (an identifier that cannot be bound
  may carry ``# noqa: S608`` with a reason, the same marker ruff's S608 rule uses).
* Nothing secret in the repository: private keys, cloud/API tokens, credentials in
  connection URLs to non-local hosts, a committed ``.env``.
* (The import graph: ``indexer`` never imports ``service`` and the rest are in
  tests/test_layering.py.)
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SQL_DIRS = ("indexer", "service")
SQL_CALLS = {"text", "execute", "exec_driver_sql", "executescript", "executemany"}
SQL_SHAPE = re.compile(
    r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|"
    r"DROP\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA\s+\w+)\b",
    re.I,
)

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "OpenAI/Anthropic key": re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{32,}"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "credentials in URL": re.compile(
        r"\b[a-z][a-z0-9+]*://[^\s:/@'\"]+:(?P<pw>[^\s@/'\"]+)@(?P<host>[^\s/:'\"]+)", re.I
    ),
    "hard-coded secret": re.compile(
        r"(?i)\b(?:password|passwd|secret|api[_-]?key|access[_-]?token)\b\s*[:=]\s*['\"](?P<val>[^'\"\s]{12,})['\"]"
    ),
}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "db", "postgres", "host"}
PLACEHOLDER = re.compile(r"(?i)^(\$\{?\w+\}?|<[^>]+>|x+|\*+|changeme|example\w*|dummy\w*|test\w*|password|secret|fake\w*)$")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".json", ".txt", ".cfg", ".ini", ".sh", ".html", ".js", ".css", ".env", ".mako", ""}


def _py_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts)


def _is_formatted_string(node: ast.AST) -> str | None:
    """Why ``node`` is a string built at run time, or None."""
    if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
        return "f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _stringish(node.left):
        return "% formatting"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and (_stringish(node.left) or _stringish(node.right)):
        return "string concatenation"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" and _stringish(node.func.value):
        return ".format()"
    return None


def _stringish(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.BinOp) and (_stringish(node.left) or _stringish(node.right))
    )


def _literal_text(node: ast.AST) -> str:
    """The constant parts of a (formatted) string expression."""
    parts = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            parts.append(sub.value)
    return " ".join(parts)


def sql_formatting_violations(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    found: dict[int, str] = {}  # one finding per line

    def allowed(node: ast.AST) -> bool:
        end = getattr(node, "end_lineno", node.lineno)
        return any("noqa: S608" in lines[i - 1] for i in range(node.lineno, end + 1))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in SQL_CALLS and node.args:
                why = _is_formatted_string(node.args[0])
                if why and not allowed(node):
                    found.setdefault(node.lineno, f"{path.relative_to(REPO)}:{node.lineno}: {why} passed to {name}()")
                    continue
        why = _is_formatted_string(node)
        if why and SQL_SHAPE.search(_literal_text(node)) and not allowed(node):
            found.setdefault(node.lineno, f"{path.relative_to(REPO)}:{node.lineno}: SQL built by {why}")
    return [found[k] for k in sorted(found)]


def test_no_sql_built_by_string_formatting():
    violations = [v for p in _py_files(*SQL_DIRS) for v in sql_formatting_violations(p)]
    assert not violations, "SQL built by string formatting (use bound parameters):\n" + "\n".join(violations)


def test_sql_scanner_catches_what_it_should(tmp_path):
    """The scanner itself: flags each unsafe shape, passes bound parameters."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from sqlalchemy import text\n"
        "def f(conn, x, t):\n"
        "    conn.execute(text(f\"SELECT * FROM papers WHERE id = '{x}'\"))\n"
        "    conn.execute('DELETE FROM papers WHERE id = %s' % x)\n"
        "    q = 'UPDATE {} SET title = 1'.format(t)\n"
        "    conn.exec_driver_sql('SELECT 1 FROM ' + t)\n"
    )
    good = tmp_path / "good.py"
    good.write_text(
        "from sqlalchemy import text\n"
        "def f(conn, x):\n"
        "    conn.execute(text('SELECT * FROM papers WHERE id = :id'), {'id': x})\n"
        "    print(f'selected {x} papers from the list')\n"
    )
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert len(sql_formatting_violations(bad)) == 4, sql_formatting_violations(bad)
        assert sql_formatting_violations(good) == []
    finally:
        REPO = saved


def _repo_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO, capture_output=True, check=True, timeout=60,
        ).stdout.decode()
        files = [REPO / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available to list the repository's files")
    return [f for f in files if f.is_file() and (f.suffix in TEXT_SUFFIXES or f.name in ("Dockerfile", "Makefile"))]


def secret_findings(path: Path, text: str) -> list[str]:
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for what, rx in SECRET_PATTERNS.items():
            for m in rx.finditer(line):
                if what == "credentials in URL":
                    host, pw = m.group("host").lower(), m.group("pw")
                    if host in LOCAL_HOSTS or PLACEHOLDER.match(pw) or pw.startswith("$"):
                        continue
                if what == "hard-coded secret" and PLACEHOLDER.match(m.group("val")):
                    continue
                found.append(f"{path}:{lineno}: {what}")
    return found


def test_nothing_secret_in_the_repository():
    findings = []
    for f in _repo_files():
        if f.stat().st_size > 2_000_000:
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings += secret_findings(f.relative_to(REPO), text)
    assert not findings, "possible secrets committed:\n" + "\n".join(findings)
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert ".env" not in tracked and not any(t.endswith("/.env") for t in tracked), "a .env file is tracked"


def test_secret_scanner_catches_what_it_should():
    key = "-----BEGIN " + "RSA PRIVATE KEY-----"
    samples = [key, "AKIA" + "ABCDEFGHIJKLMNOP", "ghp_" + "a" * 36, "postgresql://app:" + "s3cr3tPw" + "@db.example.org/x",
               'api_key = "' + "9f8e7d6c5b4a3f2e" + '"']
    for s in samples:
        assert secret_findings(Path("x"), s), s
    for s in ["postgresql://postgres:postgres@127.0.0.1:5432/db", 'password = "${PGPASSWORD}"', "sk-short"]:
        assert not secret_findings(Path("x"), s), s


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                out.append((node.lineno, node.args[0].value))
    return out


def test_only_the_tokenizer_calls_jieba():
    bad = [
        f"{p.relative_to(REPO)}:{line}: imports {mod}"
        for d in ("indexer", "service")
        for p in _py_files(d)
        if p.relative_to(REPO).as_posix() != "indexer/text/tokenizer.py"
        for line, mod in _imports(p)
        if mod.split(".")[0] in ("jieba", "rjieba")
    ]
    assert not bad, "only indexer/text/tokenizer.py may call jieba:\n" + "\n".join(bad)


def test_only_settings_reads_configuration():
    """PAPERS_* variables are read by indexer/settings.py alone (one settings object)."""
    reads = re.compile(r"(os\.environ(\.get)?\s*[\[(]|os\.getenv\s*\()\s*[\"']PAPERS_")
    bad = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for d in ("indexer", "service")
        for p in _py_files(d)
        if p.relative_to(REPO).as_posix() != "indexer/settings.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if reads.search(line)
    ]
    assert not bad, "read configuration through indexer.settings.Settings:\n" + "\n".join(bad)
