"""BM25 over titles and abstracts, served by tantivy, fed with our own tokenizer's terms.

Why this engine (measurements in docs/bm25-engine.md): tantivy gives BM25 scoring,
positions for phrases, incremental add/delete, segment merges and an on-disk index that
opens in milliseconds, all in compiled code. Text analysis stays ours: each field holds
:mod:`indexer.text.tokenizer` terms joined by spaces and tantivy's built-in ``whitespace``
analyser only splits them, so jieba, stemming and compound handling are identical for
documents, queries, keywords and the rank-bm25 reference.

Fields: ``id`` (raw, stored: upsert/delete by id), ``text_t`` (the title's terms
:data:`TITLE_REPEAT` times, then the abstract's: what free words and unfielded phrases
search), ``title_t`` and ``abstract_t`` (``ti:``/``abs:``; all with positions), ``authors_t`` (author terms, a ``|`` between authors so a quoted
name cannot match across two people), ``cats`` (canonical categories plus their archives,
one raw term each), ``published`` (i64 ``yyyymmdd``, fast: date ranges and date order).

Scoring of free words: BM25 (k1=1.2, b=0.75, tantivy's defaults) over ``text_t``, where the
title counts :data:`TITLE_REPEAT` times: BM25F-style weighting *inside* one field, with one
length normalisation. Why not the former ``0.5 × BM25(title) + BM25(abstract)``: summing
per-field scores saturates each field separately and normalises a title-only paper by an
empty abstract, which pushed papers with a title and little body out of the top 100 on the
classic collections; measured over all five development collections in docs/quality.md.
A word repeated in the query weighs that many times (query term frequency, as BM25's
reference formulation and bm25s): long natural-language queries (CISI) rely on it.

Concurrency: only one writer may exist per index (tantivy's lock file), so the writer is
opened lazily by the first ``upsert``/``delete`` and released by ``commit``/``rollback``;
readers (``readonly=True``, the web service) never take it. Searching is thread-safe: each call takes a fresh searcher from the
shared reader; :meth:`reload` makes new commits visible.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import tantivy
from tantivy import Occur, Query

from indexer.atomic import atomic_write_bytes
from indexer.errors import IndexUnavailable, InvalidQuery, StorageError
from indexer.lexical.catexpr import CategoryExpr, category_terms
from indexer.lexical.query import TEXT, Atom, Clause, ParsedQuery
from indexer.paths import BM25_INDEX_DIR, BM25_SCHEMA_VERSION
from indexer.text.tokenizer import (
    TOKENIZER_VERSION,
    Tokenizer,
    author_key,
    author_terms,
    default_tokenizer,
    has_cjk,
)

log = logging.getLogger(__name__)

TITLE_REPEAT = 2  # the title's weight inside text_t (1–3 is a plateau over the dev sets, docs/quality.md)
BULK_HEAP = 512_000_000  # writer heap of a full build (shared by its threads)
BULK_THREADS = 2
FLAT_EXCLUDE_MAX = 100  # search_terms: up to this many excluded ids are filtered after the search
AUTHOR_SEP = "|"
SORTS = ("relevance", "date")
# Equal BM25 scores are common (same length, same counts); tantivy orders them by segment
# and doc number, which differ between a bulk build and incremental upserts of the same
# papers. Relevance pages break ties by paper id, so the order does not depend on how the
# index was written. This many hits beyond the page are read to see a tie that crosses
# its end (more when a tie runs past them).
TIE_LOOKAHEAD = 8
#: 2: text_t (title × TITLE_REPEAT + abstract) scores free words; akeys. Each version has
#: its own directory (indexer.paths, where the number is kept).
SCHEMA_VERSION = BM25_SCHEMA_VERSION
INDEX_DIR = BM25_INDEX_DIR
STAMP_FILE = "papers-bm25.json"  # which tokenizer/schema wrote the terms in this index
_FIELD_OF = {"ti": ("title_t",), "abs": ("abstract_t",), TEXT: ("text_t",), "au": ("authors_t",),
             "cat": ("cats",), "id": ("id",)}


@dataclass
class IndexedDoc:
    """What the index needs of a paper (the database keeps the rest)."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: date | None = None
    updated: date | None = None


@dataclass(frozen=True)
class LexicalHit:
    id: str
    score: float


@dataclass
class LexicalResult:
    total: int
    hits: list[LexicalHit]


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("text_t", stored=False, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("title_t", stored=False, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("abstract_t", stored=False, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("authors_t", stored=False, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field("cats", stored=False, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("akeys", stored=False, tokenizer_name="raw", index_option="freq")
    sb.add_integer_field("published", stored=False, indexed=True, fast=True)
    return sb.build()


def _write_stamp(path: Path) -> None:
    stamp = {"tokenizer_version": TOKENIZER_VERSION, "schema_version": SCHEMA_VERSION}
    atomic_write_bytes(path / STAMP_FILE, json.dumps(stamp).encode(), durable=False)


def _yyyymmdd(d: date | None) -> int:
    return d.year * 10000 + d.month * 100 + d.day if d else 0


# (id, title terms, abstract terms, author terms, category terms, published yyyymmdd,
# author keys): a paper's indexed fields as plain, picklable values
PreparedDoc = tuple[str, str, str, str, tuple[str, ...], int, tuple[str, ...]]


def prepare_document(d: IndexedDoc, tokenizer: Tokenizer, terms: Counter | None = None) -> PreparedDoc:
    """Tokenise a paper for the index (the costly part of indexing, so a full build can
    run it in worker processes). With ``terms``, each distinct title/abstract term of the
    paper is counted once there: summed over the papers of a fresh index these are
    exactly its :meth:`BM25Index.doc_freq` values."""
    tok = tokenizer.tokenize
    title = tok(d.title) if d.title else []
    abstract = tok(d.abstract) if d.abstract else []
    if terms is not None:
        terms.update({*title, *abstract})
    authors = [" ".join(author_terms(a)) for a in (d.authors or [])]
    keys = tuple(dict.fromkeys(k for k in map(author_key, d.authors or []) if k))
    return (d.id, " ".join(title), " ".join(abstract), f" {AUTHOR_SEP} ".join(a for a in authors if a),
            tuple(category_terms(d.categories or [])), _yyyymmdd(d.published), keys)


ALT_TIE = 0.2  # share of the other alternatives' scores a disjunction-max clause adds
PHRASE_BONUS = 1.0  # a relaxed phrase's match is worth this many times its words' weight


def _relaxable(c: Clause) -> bool:
    """An unfielded quoted phrase (one alternative, not excluded): what relaxing drops."""
    return (not c.negated and len(c.atoms) == 1 and c.atoms[0].field == TEXT and c.atoms[0].phrase
            and len(c.atoms[0].terms) > 1)


def relaxable_phrases(parsed: ParsedQuery) -> list[str]:
    """The quoted phrases of ``parsed`` that a relaxed search turns into ranked words."""
    return [c.atoms[0].value for c in parsed.clauses if _relaxable(c)]


def _page_with_ties(found: list, offset: int, limit: int) -> tuple[list, int]:
    """The (score, address) pairs of the page [offset, offset+limit) of ``found`` (best first),
    widened on both sides to whole groups of equal scores, and where the widened run starts:
    sorting the run by (-score, id) then gives the same page whatever the doc order was."""
    if offset >= len(found):
        return [], offset
    start, end = offset, min(offset + limit, len(found))
    while start > 0 and found[start - 1][0] == found[offset][0]:
        start -= 1
    while end < len(found) and found[end][0] == found[end - 1][0]:
        end += 1
    return found[start:end], start


def _tantivy_doc(p: PreparedDoc) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("id", p[0])
    # separate values of one field: tantivy leaves a position gap between them, so a
    # phrase never matches across the title's repetitions or into the abstract
    for _ in range(TITLE_REPEAT if p[1] else 0):
        doc.add_text("text_t", p[1])
    doc.add_text("text_t", p[2])
    doc.add_text("title_t", p[1])
    doc.add_text("abstract_t", p[2])
    doc.add_text("authors_t", p[3])
    for c in p[4]:
        doc.add_text("cats", c)
    doc.add_integer("published", p[5])
    for k in p[6]:
        doc.add_text("akeys", k)
    return doc


def _combine(must: list[tuple[Occur, Query]], should: list[tuple[Occur, Query]],
             must_not: list[tuple[Occur, Query]]) -> list[tuple[Occur, Query]] | None:
    """The top-level clauses of a query (``must`` is extended); None when nothing can match.

    Without a required clause the optional ones become one required group (at least one
    must match); beside a required clause they only rank."""
    if not must and not should:
        if not must_not:
            return None
        must.append((Occur.Must, Query.all_query()))
    if must and should:
        # words rank but do not filter once something is required
        must.append((Occur.Should, Query.boolean_query(should)))
        should = []
    if should:
        must.append((Occur.Must, Query.boolean_query(should)))
    return must + must_not


class BM25Index:
    """A tantivy index under ``path``. Use :meth:`open`."""

    def __init__(self, path: Path, index: tantivy.Index, *, readonly: bool,
                 tokenizer: Tokenizer, writer_heap: int):
        self.path = path
        self.readonly = readonly
        self.tokenizer = tokenizer
        self._index = index
        self._schema = index.schema
        self._writer: tantivy.IndexWriter | None = None
        self._writer_heap = writer_heap
        self._lock = threading.Lock()
        self._df_cache: dict[str, int] = {}
        self._approx_df_cache: dict[str, int] = {}  # approx_doc_freq(s): ~12 µs a term at 1M, ~100 terms per related lookup

    # -- lifecycle ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False,
             tokenizer: Tokenizer | None = None, writer_heap: int = 128_000_000) -> BM25Index:
        """Open the index at ``path``, creating it when missing (unless ``readonly``)."""
        path = Path(path)
        try:
            exists = (path / "meta.json").exists()
            if exists:
                index = tantivy.Index.open(str(path))
            elif readonly:
                raise IndexUnavailable(f"no BM25 index at {path}: run `papers build`")
            else:
                path.mkdir(parents=True, exist_ok=True)
                index = tantivy.Index(_schema(), path=str(path))
                _write_stamp(path)
        except (OSError, ValueError) as e:
            raise StorageError(f"cannot open BM25 index at {path}: {e}") from e
        try:
            index.config_reader(reload_policy="Manual")
        except ValueError:
            pass
        ix = cls(path, index, readonly=readonly,
                 tokenizer=tokenizer or default_tokenizer(), writer_heap=writer_heap)
        if ix.stale:
            log.warning("BM25 index at %s was built by another tokenizer/schema version: rebuild it in full", path)
        return ix

    @property
    def stale(self) -> bool:
        """True when the index was written by another tokenizer or schema version: its terms
        may not match today's query terms, so the builder should re-index everything."""
        try:
            stamp = json.loads((self.path / STAMP_FILE).read_text())
        except (OSError, ValueError):
            return True
        return stamp.get("tokenizer_version") != TOKENIZER_VERSION or stamp.get("schema_version") != SCHEMA_VERSION

    def mark_current(self) -> None:
        """Record that every document now carries today's terms (after a full re-index)."""
        _write_stamp(self.path)

    def reload(self) -> None:
        """See the latest commit (made by this or another process)."""
        self._index.reload()
        self._df_cache = {}
        self._approx_df_cache = {}

    def close(self) -> None:
        """Release the writer and its lock; uncommitted writes are dropped (as rollback)."""
        self.rollback()

    # -- writing -------------------------------------------------------------------------
    def _w(self, *, heap: int | None = None, threads: int = 1) -> tantivy.IndexWriter:
        if self.readonly:
            raise StorageError("this BM25 index was opened read-only")
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=heap or self._writer_heap, num_threads=threads)
            except ValueError as e:
                raise StorageError(f"cannot open the BM25 index for writing (another writer?): {e}") from e
        return self._writer

    def begin_bulk(self, *, clear: bool = False) -> None:
        """Open the writer for a bulk load (a full build): a bigger indexing heap and two
        indexing threads (fewer, larger segments; tantivy's threads index while Python
        tokenises the next papers). ``clear`` drops every document first (visible, like
        everything else, only at :meth:`commit`). Follow with :meth:`add_new`."""
        threads = max(1, min(BULK_THREADS, os.cpu_count() or 1))
        with self._lock:
            w = self._w(heap=max(self._writer_heap, BULK_HEAP), threads=threads)
            if clear:
                w.delete_all_documents()

    def _document(self, d: IndexedDoc, terms: Counter | None = None) -> tantivy.Document:
        """The tantivy document of ``d``; with ``terms``, each title/abstract term of the
        paper is counted once there (document frequencies for the keyword step)."""
        return _tantivy_doc(prepare_document(d, self.tokenizer, terms))

    def upsert(self, docs: Iterable[IndexedDoc]) -> int:
        """Add or replace papers by id (visible after :meth:`commit`). Returns how many."""
        docs = list(docs)
        built = [(d.id, self._document(d)) for d in docs]  # tokenise outside the lock
        with self._lock:
            w = self._w()
            for pid, doc in built:
                w.delete_documents_by_term("id", pid)
                w.add_document(doc)
        return len(built)

    def add_prepared(self, prepared: Iterable[PreparedDoc], *, replace: bool = True) -> int:
        """Add papers tokenised by :func:`prepare_document` (perhaps in another process);
        ``replace`` deletes a previous version by id first (as :meth:`upsert`)."""
        n = 0
        with self._lock:
            w = self._w()
            add = w.add_document
            for p in prepared:
                if replace:
                    w.delete_documents_by_term("id", p[0])
                add(_tantivy_doc(p))
                n += 1
        return n

    def add_new(self, docs: Iterable[IndexedDoc], terms: Counter | None = None) -> int:
        """Add papers known not to be in the index (an initial or cleared build): no delete
        by id per paper. ``terms`` (optional) counts each paper's distinct title/abstract
        terms: after a full build these are exactly the index's :meth:`doc_freq`."""
        n = 0
        with self._lock:
            add = self._w().add_document
            for d in docs:
                add(self._document(d, terms))
                n += 1
        return n

    def delete(self, ids: Iterable[str]) -> int:
        """Remove papers by id; returns how many of them were in the index."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return 0
        present = self._count(Query.term_set_query(self._schema, "id", ids))
        with self._lock:
            w = self._w()
            for pid in ids:
                w.delete_documents_by_term("id", pid)
        return present

    def commit(self) -> None:
        """Make pending writes durable and visible, then release the writer (and tantivy's
        lock file) after its merges, so a failed run later in this process can never block the
        next build; the next write opens a new writer. A no-op when nothing was written."""
        with self._lock:
            if self._writer is None:
                return
            writer, self._writer = self._writer, None
            try:
                writer.commit()
            finally:
                writer.wait_merging_threads()
        self.reload()

    def rollback(self) -> None:
        """Drop pending (uncommitted) writes and release the writer."""
        with self._lock:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                writer.rollback()
                writer.wait_merging_threads()

    # -- statistics ------------------------------------------------------------------------
    @property
    def num_docs(self) -> int:
        return self._index.searcher().num_docs

    def doc_freq(self, term: str) -> int:
        """Live papers whose title or abstract contains ``term`` (a tokenizer term)."""
        cached = self._df_cache.get(term)
        if cached is not None:
            return cached
        n = self._count(self._term("text_t", term))
        if len(self._df_cache) > 500_000:
            self._df_cache = {}
        self._df_cache[term] = n
        return n

    def approx_doc_freq(self, term: str) -> int:
        """Papers whose title or abstract holds ``term``, read from the term dictionary:
        no search, but deleted papers still count until their segment is merged (fine for
        weighting feedback terms, not for exact statistics: use :meth:`doc_freq`)."""
        return self.approx_doc_freqs((term,))[term]

    def approx_doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        """:meth:`approx_doc_freq` of many terms, the unseen ones through one searcher
        (cached until the next :meth:`reload`, which every new index version brings)."""
        cache = self._approx_df_cache
        out = {t: cache.get(t, -1) for t in terms}
        missing = [t for t, n in out.items() if n < 0]
        if missing:
            searcher = self._index.searcher()
            if len(cache) > 500_000:
                cache = self._approx_df_cache = {}
            for t in missing:
                out[t] = cache[t] = int(searcher.doc_freq("text_t", t))
        return out

    def doc_count_by_category(self) -> dict[str, int]:
        """Live papers per category term (archives included, e.g. ``cs``)."""
        res = self._index.searcher().aggregate(Query.all_query(), {"c": {"terms": {"field": "cats", "size": 100000}}})
        return {b["key"]: int(b["doc_count"]) for b in res.get("c", {}).get("buckets", [])}

    # -- query building -------------------------------------------------------------------------
    def _term(self, fld: str, term: str) -> Query:
        return Query.term_query(self._schema, fld, term, index_option="freq")

    def _word(self, term: str, weight: float = 1.0) -> list[tuple[Occur, Query]]:
        """One free term (title and abstract, text_t) as an optional clause."""
        q = self._term("text_t", term)
        return [(Occur.Should, q if weight == 1.0 else Query.boost_query(q, weight))]

    def _atom_query(self, a: Atom) -> Query | None:
        if not a.terms:
            return None
        fields = _FIELD_OF[a.field]
        per_field = []
        for f in fields:
            if a.field == "au" and len(a.terms) > 1:
                q = self._author_query(list(a.terms))
            elif a.phrase and len(a.terms) > 1:
                q = Query.phrase_query(self._schema, f, list(a.terms))
            elif len(a.terms) == 1:
                q = self._term(f, a.terms[0]) if f not in ("id", "cats") else Query.term_query(self._schema, f, a.terms[0])
            else:  # hyphen compound in a field ("ti:u-net"): any of its forms
                q = Query.boolean_query([(Occur.Should, self._term(f, t)) for t in a.terms])
            per_field.append(q)
        if len(per_field) == 1:
            return per_field[0]
        return Query.boolean_query([(Occur.Should, q) for q in per_field])

    def _author_query(self, terms: list[str]) -> Query:
        """``au:"Yann LeCun"`` also matches ``Y. LeCun`` (initials of the given names)."""
        q = Query.phrase_query(self._schema, "authors_t", list[str | tuple[int, str]](terms))
        initials = [t[0] for t in terms[:-1]] + [terms[-1]]
        if initials == terms:
            return q
        return Query.boolean_query([(Occur.Should, q),
                                    (Occur.Should, Query.phrase_query(self._schema, "authors_t", list[str | tuple[int, str]](initials)))])

    def _clause_query(self, c: Clause) -> Query | None:
        qs = [q for q in (self._atom_query(a) for a in c.atoms) if q is not None]
        if not qs:
            return None
        return qs[0] if len(qs) == 1 else Query.boolean_query([(Occur.Should, q) for q in qs])

    def _filters(self, cats: CategoryExpr | None, date_from: date | None, date_to: date | None) -> list[tuple[Occur, Query]]:
        out: list[tuple[Occur, Query]] = []
        if cats is not None and cats.include:
            inc = Query.term_set_query(self._schema, "cats", list(cats.include))
            out.append((Occur.Must, Query.const_score_query(inc, 0.0)))
        if cats is not None and cats.exclude:
            out.append((Occur.MustNot, Query.term_set_query(self._schema, "cats", list(cats.exclude))))
        if date_from is not None or date_to is not None:
            rng = Query.range_query(self._schema, "published", tantivy.FieldType.Integer,
                                    _yyyymmdd(date_from) if date_from else 0,
                                    _yyyymmdd(date_to) if date_to else 99991231)
            out.append((Occur.Must, Query.const_score_query(rng, 0.0)))
        return out

    def build_query(self, parsed: ParsedQuery, cats: CategoryExpr | None = None, date_from: date | None = None,
                    date_to: date | None = None, *, relax: bool = False,
                    expand: Mapping[str, float] | None = None,
                    alternatives: Sequence[Mapping[str, float]] = (), all_alternatives: bool = False) -> Query | None:
        """The tantivy query for ``parsed`` plus filters; None when nothing can match.

        ``relax``: unfielded quoted phrases stop being required; each becomes an optional
        phrase clause (worth :data:`PHRASE_BONUS` times its words) beside its words as free
        words, so the closest papers still rank (see :func:`relaxable_phrases`).
        ``expand``: extra optional weighted terms or "a b" term pairs (pseudo-relevance
        feedback); they rank, never filter. ``alternatives``: groups of weighted terms or
        pairs, each group one optional clause worth its best-matching member (plus
        :data:`ALT_TIE` of the others): the English renderings of one Chinese term;
        ``all_alternatives`` requires a match in every group and every Latin free word."""
        must, should, must_not, free = self._clause_queries(parsed, relax)
        for t, n in free.items():
            if all_alternatives and not has_cjk(t):  # "Transformer 目标检测": the Latin word too
                must.extend((Occur.Must, q) for _, q in self._word(t, float(n)))
            else:
                should.extend(self._word(t, float(n)))
        if expand:
            should.extend(self._bag(expand))
        for group in alternatives:
            alts = [q for _, q in self._bag(group)]
            if alts:
                q = alts[0] if len(alts) == 1 else Query.disjunction_max_query(alts, ALT_TIE)
                (must if all_alternatives else should).append((Occur.Must if all_alternatives else Occur.Should, q))
        top = _combine(must, should, must_not)
        if top is None:
            return None
        return Query.boolean_query(top + self._filters(cats, date_from, date_to))

    def _clause_queries(self, parsed: ParsedQuery, relax: bool) -> tuple[
            list[tuple[Occur, Query]], list[tuple[Occur, Query]], list[tuple[Occur, Query]], Counter[str]]:
        """``(must, should, must_not, free words)`` of the parsed clauses (see
        :meth:`build_query`): free words are counted, not yet turned into queries."""
        must: list[tuple[Occur, Query]] = []
        should: list[tuple[Occur, Query]] = []
        must_not: list[tuple[Occur, Query]] = []
        free: Counter[str] = Counter()  # query term frequency: a repeated word weighs more
        for c in parsed.clauses:
            if c.negated:
                q = self._clause_query(c)
                if q is not None:
                    must_not.append((Occur.MustNot, q))
            elif relax and _relaxable(c):
                a = c.atoms[0]
                phrase = self._atom_query(a)
                if phrase is not None:
                    should.append((Occur.Should, Query.boost_query(phrase, PHRASE_BONUS * len(a.terms))))
                free.update(a.terms)
            elif c.required:
                q = self._clause_query(c)
                if q is None:
                    continue  # e.g. ti:"the" — only stop words: no constraint
                must.append((Occur.Must, q))
            else:
                for a in c.atoms:
                    free.update(a.terms)
        return must, should, must_not, free

    # -- searching ----------------------------------------------------------------------------
    def _count(self, q: Query) -> int:
        return int(self._index.searcher().search(q, limit=1, count=True).count or 0)  # type: ignore[attr-defined]  # missing from tantivy stubs

    def _run(self, q: Query, *, sort: str, offset: int, limit: int, count: bool = True,
             searcher: tantivy.Searcher | None = None, addresses: dict[tuple[int, int], str] | None = None) -> LexicalResult:
        """``searcher``: the one to read through (default: the latest); ``addresses``, when
        given, receives each hit's document address -> id (valid for that searcher only)."""
        if sort not in SORTS:
            raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}")
        if offset < 0 or limit < 0:
            raise InvalidQuery("offset and limit must be ≥ 0")
        searcher = searcher or self._index.searcher()
        if limit == 0:
            return LexicalResult(int(searcher.search(q, limit=1, count=True).count or 0) if count else 0, [])  # type: ignore[attr-defined]
        if sort == "date":
            res = searcher.search(q, limit=limit, count=count, order_by_field="published", offset=offset,
                                  order=tantivy.Order.Desc)
            found = res.hits
        else:
            want = offset + limit + TIE_LOOKAHEAD
            while True:
                res = searcher.search(q, limit=want, count=count)
                ranked = res.hits
                found, start = _page_with_ties(ranked, offset, limit)
                if len(ranked) < want or start + len(found) < len(ranked):
                    break
                want *= 2  # the tie runs past what was read: read further
        hits = []
        for score, addr in found:
            pid = str(searcher.doc(addr).get_first("id"))
            if addresses is not None:
                addresses[(addr.segment_ord, addr.doc)] = pid
            hits.append(LexicalHit(pid, float(score) if sort == "relevance" else 0.0))
        if sort == "relevance":
            skip = offset - start
            hits = sorted(hits, key=lambda h: (-h.score, h.id))[skip:skip + limit]
        return LexicalResult(int(res.count or 0) if count else len(hits), hits)  # type: ignore[attr-defined]

    def search(self, parsed: ParsedQuery, *, cats: CategoryExpr | None = None, date_from: date | None = None,
               date_to: date | None = None, sort: str = "relevance", offset: int = 0, limit: int = 10,
               relax: bool = False, expand: Mapping[str, float] | None = None,
               alternatives: Sequence[Mapping[str, float]] = (), all_alternatives: bool = False) -> LexicalResult:
        """Papers matching ``parsed`` and the filters; ``total`` is the exact match count
        (``relax``/``expand``/``alternatives`` as in :meth:`build_query`)."""
        q = self.build_query(parsed, cats, date_from, date_to, relax=relax, expand=expand, alternatives=alternatives,
                             all_alternatives=all_alternatives)
        if q is None:
            return LexicalResult(0, [])
        return self._run(q, sort=sort, offset=offset, limit=limit)

    def _bag(self, weighted_terms: Mapping[str, float]) -> list[tuple[Occur, Query]]:
        """Optional clauses for a weighted bag; a key with spaces ("graph neural") is a
        phrase of tokenizer terms, so keyphrases can be passed as they are."""
        should: list[tuple[Occur, Query]] = []
        for t, w in weighted_terms.items():
            if not t or not w or w <= 0:
                continue
            parts = t.split()
            if len(parts) == 1:
                should.extend(self._word(parts[0], float(w)))
                continue
            should.append((Occur.Should, Query.boost_query(
                Query.phrase_query(self._schema, "text_t", list[str | tuple[int, str]](parts)), float(w))))
        return should

    def search_terms(self, weighted_terms: Mapping[str, float], *, limit: int = 10, exclude_ids: Sequence[str] = (),
                     cats: CategoryExpr | None = None, date_from: date | None = None,
                     date_to: date | None = None, searcher: tantivy.Searcher | None = None,
                     addresses: dict[tuple[int, int], str] | None = None) -> list[LexicalHit]:
        """A boosted OR of tokenizer terms or space-joined term phrases (related papers,
        recommendations); ``total`` is not counted (``searcher``, ``addresses`` as in :meth:`_run`)."""
        should = self._bag(weighted_terms)
        if not should or limit <= 0:
            return []
        filters = self._filters(cats, date_from, date_to)
        exclude = set(exclude_ids)
        if not filters and len(exclude) <= FLAT_EXCLUDE_MAX:
            # A flat OR of term queries (boosts included) is scored by tantivy's block-max
            # WAND, which skips blocks of documents that cannot reach the top `limit`;
            # wrapping it (Must + MustNot) turns that off (measured 2x at 100k). So the few
            # excluded ids are asked for extra and dropped here; same hits, same scores.
            hits = self._run(Query.boolean_query(should), sort="relevance", offset=0,
                             limit=limit + len(exclude), count=False, searcher=searcher, addresses=addresses).hits
            return [h for h in hits if h.id not in exclude][:limit]
        clauses: list[tuple[Occur, Query]] = [(Occur.Must, Query.boolean_query(should))]
        if exclude_ids:
            clauses.append((Occur.MustNot, Query.term_set_query(self._schema, "id", list(exclude_ids))))
        clauses += filters
        return self._run(Query.boolean_query(clauses), sort="relevance", offset=0, limit=limit, count=False,
                         searcher=searcher, addresses=addresses).hits

    def _author_counts(self, searcher: tantivy.Searcher, keys: Sequence[str], per_author: int) -> dict[tuple[int, int], int]:
        """Document address -> how many of ``keys`` it shares, over each author's
        ``per_author`` highest-scoring papers (rare names score higher); first seen first."""
        counts: dict[tuple[int, int], int] = {}
        for k in dict.fromkeys(keys):
            if not k:
                continue
            found = searcher.search(Query.term_query(self._schema, "akeys", k, index_option="freq"), limit=per_author)
            for _, addr in found.hits:
                a = (addr.segment_ord, addr.doc)
                counts[a] = counts.get(a, 0) + 1
        return counts

    def text_and_coauthors(self, weighted_terms: Mapping[str, float], keys: Sequence[str], *, depth: int,
                           per_author: int, extra: int, exclude_ids: Sequence[str] = (),
                           ) -> tuple[dict[str, float], dict[str, int], list[str]]:
        """Related-paper candidates through one searcher: the text's top ``depth``
        (:meth:`search_terms`: id -> score), how many of ``keys`` each candidate shares
        (each author's ``per_author`` papers of highest score: rare names score higher;
        for the candidates returned only), and up to ``extra``
        co-authored papers the text did not find, most shared authors first.

        Why one method: a 1M index lists ~800 co-authored papers per lookup, and reading
        each one's id cost more than the rest of the co-author step (~1.5 ms). Counted by
        document address instead, only the text's hits and the ``extra`` kept are read."""
        searcher = self._index.searcher()
        addresses: dict[tuple[int, int], str] = {}
        ranked = {h.id: h.score for h in self.search_terms(weighted_terms, limit=depth, exclude_ids=exclude_ids,
                                                              searcher=searcher, addresses=addresses)} if weighted_terms else {}
        counts = self._author_counts(searcher, keys, per_author)
        skip = set(exclude_ids)
        shared = {pid: counts[a] for a, pid in addresses.items() if pid in ranked and a in counts}
        outside: list[str] = []
        for a in sorted(counts, key=lambda a: -counts[a]):  # stable: first seen first
            known = addresses.get(a)
            if known is not None and known in ranked:
                continue
            if len(outside) >= extra:
                break
            pid = known if known is not None else str(searcher.doc(tantivy.DocAddress(*a)).get_first("id"))
            if pid in skip:
                continue
            outside.append(pid)
            shared[pid] = counts[a]
        return ranked, shared, outside

    def score_ids(self, weighted_terms: Mapping[str, float], ids: Sequence[str]) -> dict[str, float]:
        """BM25 of each of ``ids`` against a weighted bag of terms (0-scoring ids left out)."""
        should = self._bag(weighted_terms)
        ids = list(dict.fromkeys(ids))
        if not should or not ids:
            return {}
        q = Query.boolean_query([(Occur.Must, Query.boolean_query(should)),
                                 (Occur.Must, Query.const_score_query(Query.term_set_query(self._schema, "id", ids), 0.0))])
        return {h.id: h.score for h in self._run(q, sort="relevance", offset=0, limit=len(ids), count=False).hits}

    def search_tokens(self, tokens: Sequence[str], *, limit: int = 10) -> list[LexicalHit]:
        """Plain BM25 over already-tokenised terms, each term once, no phrase or field logic:
        the configuration compared with rank-bm25 in tests/test_bm25_reference.py."""
        return self.search_terms(dict.fromkeys(tokens, 1.0), limit=limit)

    def ids_matching(self, cats: CategoryExpr | None = None, date_from: date | None = None, date_to: date | None = None,
                     sort: str = "date", offset: int = 0, limit: int = 25) -> LexicalResult:
        """Papers passing the filters alone (daily lists, category pages), newest first."""
        filters = self._filters(cats, date_from, date_to)
        q = Query.boolean_query([(Occur.Must, Query.all_query()), *filters])
        return self._run(q, sort="date" if sort == "date" else "relevance", offset=offset, limit=limit)

    def contains(self, pid: str) -> bool:
        return self._count(Query.term_query(self._schema, "id", pid)) > 0
