# Two commands on a fresh clone (see README):
#   make serve   install what serving needs, ingest the bundled sample, build the index, start the service
#   make test    install that plus the test tools and Debian packages the tests drive, run the suite
# Both are idempotent: a second run skips what is already done. Each step prints a line
# ("==> ..."); pip and apt-get show their own progress.

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

STEP        := @printf '==> %s\n'

.PHONY: install install-test system-deps serve sample test lint typecheck clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian packages only the tests drive: Chromium (browser tests) and PostgreSQL (the
# PostgreSQL test starts its own server). Installed by `make test` only, when missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages for the tests:$$missing"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $$missing; \
	else \
	  echo "==> Debian packages for the tests already there (chromium, chromium-driver, postgresql)"; \
	fi

# What serving needs. torch==2.13.0 is the CPU build on this machine's disk; naming it
# first keeps pip from pulling a multi-GB CUDA build for sentence-transformers.
$(VENV)/.installed: pyproject.toml
	$(STEP) "creating the virtual environment $(VENV)"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(STEP) "upgrading pip"
	$(PY) -m pip install --upgrade pip
	$(STEP) "installing CPU PyTorch and the service's dependencies (a line per package)"
	$(PY) -m pip install "torch==2.13.0" -e .
	@touch $@

# The test tools (pyproject's dev extra) and the Debian packages the tests drive.
$(VENV)/.installed-test: $(VENV)/.installed
	@$(MAKE) --no-print-directory system-deps
	$(STEP) "installing the test tools (pytest, selenium, schemathesis, ...)"
	$(PY) -m pip install -e ".[dev]"
	@touch $@

# Ingest and index the bundled sample once: BM25, keywords and both dense spaces. The
# sample's vectors ship in indexer/data/sample-embeddings.npz (keyed by content hash), so
# the build copies them instead of embedding: hybrid and Chinese search from the start.
sample: install
	@if [ ! -f "$(PAPERS_DATA_DIR)/index/manifest.json" ]; then \
	  echo "==> creating the database in $(PAPERS_DATA_DIR)" && $(PAPERS) migrate && \
	  echo "==> ingesting the bundled sample ($(SAMPLE))" && $(PAPERS) ingest jsonl $(SAMPLE) && \
	  echo "==> building the BM25 index, keywords and both dense spaces (the sample's vectors ship with the repo)" && $(PAPERS) build; \
	else \
	  echo "==> the sample is already indexed in $(PAPERS_DATA_DIR)"; \
	fi

# Serve; a background build embeds whatever the seeds did not cover (nothing on a fresh
# clone) and the running service switches to the new version when it is published.
serve: sample
	@mkdir -p $(PAPERS_DATA_DIR)
	@($(PAPERS) -v build > $(PAPERS_DATA_DIR)/build.log 2>&1 &) ; \
	echo "==> embedding the sample in the background (log: $(PAPERS_DATA_DIR)/build.log)"
	$(STEP) "serving on http://$(HOST):$(PORT)"
	$(PAPERS) serve --host $(HOST) --port $(PORT)

test: install-test
	$(STEP) "running the test suite"
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check indexer service tests benchmarks migrations

typecheck: install-test
	$(VENV)/bin/mypy indexer service

clean:
	rm -rf $(PAPERS_DATA_DIR) test-artifacts
