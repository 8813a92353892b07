"""Lexical search: the tantivy BM25 index, query parsing, category algebra, the lexical ranking."""
