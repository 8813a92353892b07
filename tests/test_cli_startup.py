"""`papers` starts fast and keeps stdout clean.

* `papers --help` (and a subcommand's --help) loads no heavy module: the commands import
  settings, the engine, models and the index libraries only when they run. (No timing
  assertion here; `papers --help` measured 0.47 s -> 0.17 s on the 2-core machine.)
* Results on stdout are not preceded by log lines: logging is warnings-only unless `-v`
  (or PAPERS_LOG_LEVEL) asks for more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("torch", "tantivy", "sentence_transformers", "transformers", "numpy", "sqlalchemy", "alembic",
         "pydantic_settings", "jieba", "indexer.search.engine", "indexer.settings")

PROBE = (
    "import json, runpy, sys\n"
    "sys.argv = ['papers', *json.loads(sys.argv[1])]\n"
    "try:\n"
    "    runpy.run_module('service.cli', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "sys.stderr.write('LOADED ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERS_")}
    env.update({"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **extra})
    return env


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_imports_no_heavy_module(tmp_path, args):
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: papers" in proc.stdout or "version" in proc.stdout
    loaded = set(json.loads(proc.stderr.rsplit("LOADED ", 1)[1]))
    assert not [m for m in HEAVY if m in loaded], f"`papers {' '.join(args)}` imported heavy modules"


def _search(settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=_env(PAPERS_DATA_DIR=str(settings.data_dir), PAPERS_EMBEDDING_MODEL=settings.embedding_model,
                 PAPERS_MULTILINGUAL_MODEL=settings.multilingual_model, **env),
        cwd=settings.data_dir.parent, capture_output=True, text=True, timeout=120,
    )


def test_search_output_is_not_preceded_by_log_lines(built_settings):
    quiet = _search(built_settings, "search", "--mode", "bm25", "graph", "neural", "network")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines()[0].endswith("ms)") and " results (bm25, " in quiet.stdout.splitlines()[0]
    verbose = _search(built_settings, "-v", "search", "--mode", "bm25", "graph", "neural", "network")
    assert verbose.returncode == 0 and "INFO indexer.search.engine loaded index version" in verbose.stderr
    assert verbose.stdout == quiet.stdout.replace(quiet.stdout.splitlines()[0], verbose.stdout.splitlines()[0], 1)
    explicit = _search(built_settings, "search", "--mode", "bm25", "graph", PAPERS_LOG_LEVEL="INFO")
    assert "loaded index version" in explicit.stderr
