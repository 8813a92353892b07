"""Sizes of the text pipeline's process-wide caches: large for builds, small for serving.

The tokenizer (words → terms), the phrase splitter (word classes) and the keyword
extractor (df/idf of keys) each remember what they computed, up to a limit, then start
over. A build meets the same words in a million papers, so the limits are large (1–2M
entries). A service worker runs for weeks on arbitrary texts (queries, /keywords on
whole papers), and every entry stays in that worker's memory: with the build's limits,
keyword extraction over 60k real abstracts grew a worker by 347 MB (anonymous memory,
100k index). With ``size_for_serving``'s limits: 43 MB after 20k abstracts, 54 MB after
60k, 64 MB after 100k, at the same speed (1,800–2,600 abstracts/s either way).
"""

from __future__ import annotations

from indexer.text import phrases
from indexer.text.tokenizer import default_tokenizer

#: Entries each cache keeps in a service worker before it starts over.
SERVING_ENTRIES = 50_000


def size_for_serving(entries: int = SERVING_ENTRIES) -> None:
    """Lower the process-wide cache limits (call once, in a serving process)."""
    default_tokenizer().cache_limit = entries
    phrases.set_word_info_limit(entries)
