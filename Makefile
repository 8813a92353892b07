# Two commands on a fresh clone (see README):
#   make serve   install everything, ingest the bundled sample, build the index, start the service
#   make test    install everything and run the test suite
# Both are idempotent: a second run skips what is already done.

VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
PAPERS      := $(VENV)/bin/papers
HOST        ?= 127.0.0.1
PORT        ?= 8000
SAMPLE      := indexer/data/sample-papers.jsonl.gz
export PAPERS_DATA_DIR ?= data
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: install system-deps serve sample test lint typecheck clean

install: $(VENV)/.installed

# Debian packages the tests drive: Chromium (browser tests) and PostgreSQL (the
# PostgreSQL test starts its own server). Installed only when missing.
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing Debian packages: chromium chromium-driver postgresql"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver postgresql >/dev/null; \
	fi

# torch==2.13.0 is the CPU build on this machine's disk; naming it first keeps pip
# from pulling a multi-GB CUDA build for sentence-transformers.
$(VENV)/.installed: pyproject.toml
	$(MAKE) system-deps
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0" -e ".[dev]"
	touch $@

# Ingest and index the bundled sample once: BM25, keywords and both dense spaces. The
# sample's vectors ship in indexer/data/sample-embeddings.npz (keyed by content hash), so
# the build copies them instead of embedding: hybrid and Chinese search from the start.
sample: install
	@if [ ! -f "$(PAPERS_DATA_DIR)/index/manifest.json" ]; then \
	  $(PAPERS) migrate && \
	  $(PAPERS) ingest jsonl $(SAMPLE) && \
	  $(PAPERS) build; \
	fi

# Serve; a background build embeds whatever the seeds did not cover (nothing on a fresh
# clone) and the running service switches to the new version when it is published.
serve: sample
	@mkdir -p $(PAPERS_DATA_DIR)
	@($(PAPERS) build > $(PAPERS_DATA_DIR)/build.log 2>&1 &) ; \
	echo "embedding the sample in the background (log: $(PAPERS_DATA_DIR)/build.log)"
	$(PAPERS) serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check indexer service tests benchmarks migrations

typecheck: install
	$(VENV)/bin/mypy indexer

clean:
	rm -rf $(PAPERS_DATA_DIR) test-artifacts
