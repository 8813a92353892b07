"""papers indexer: owns the data (models, ingestion, tokenizer, index, embeddings, keywords).

The indexer never imports ``service``; ``tests/test_layering.py`` enforces it.
"""

__version__ = "0.1.0"
