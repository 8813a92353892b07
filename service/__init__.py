"""papers service: HTTP API, web UI and the `papers` command line. Reads what indexer builds.

It imports ``indexer`` (never the other way round); only `papers bench` imports
``benchmarks`` (tests/test_layering.py, docs/architecture.md).
"""
