"""Ingestion sources. Each parses its input into :class:`indexer.ingest.records.PaperRecord` and
writes through :func:`indexer.ingest.store.upsert_papers` / :func:`indexer.ingest.store.upsert_batch`.

* :mod:`indexer.ingest.jsonl` — our JSONL format (``papers.jsonl.gz``), plain or gzip.
* :mod:`indexer.ingest.kaggle` — the Kaggle ``arxiv-metadata-oai-snapshot.json`` lines.
* :mod:`indexer.ingest.oai` — OAI-PMH ``ListRecords`` (arXiv / arXivRaw), resumable.
* :mod:`indexer.ingest.arxiv_api` — the arXiv API (Atom) by id.
* :mod:`indexer.ingest.runs` — an ingest's report, recorded as a run through :mod:`indexer.runs`.
"""
