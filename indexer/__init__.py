"""papers indexer: owns the data (models, ingestion, tokenizer, index, embeddings, keywords)
and everything that reads or writes it; the service and the benchmarks build on it.

The indexer never imports ``service``. Its subsystems (core, ingest, text, lexical, dense,
search, pipeline, evaluation) and which may import which are a table in
tests/test_layering.py, drawn in docs/architecture.md.
"""

__version__ = "0.1.0"
