"""SearchEngine: the read side the service (and the CLI) calls.

Why one facade: the HTTP API, the web UI, feeds and `papers search` must rank
identically, so ranking lives here once. The engine ranks; it composes

- :class:`indexer.search.published.PublishedIndex`: the published version it follows (BM25 index,
  embedding stores), the query models, warm-up — :meth:`reload_if_changed` is a cheap
  stat per request, and a new version is swapped in without a restart or a failed request;
- :class:`indexer.search.catalog.Catalog`: the SQL reads (paper rows, stored keywords, day
  listings, counts), which return rows, never hits;
- :mod:`indexer.search.hits`: ranked ids turned into hits (and hits into JSON);
- :class:`indexer.search.search_request.SearchRequest`: the parameters of a search and their limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

from indexer.db import open_database
from indexer.embed_progress import describe
from indexer.errors import DenseUnavailable, InvalidInput, InvalidQuery, NotFound
from indexer.ingest.records import InvalidRecord, normalize_arxiv_id
from indexer.lexical import ranking as lexical
from indexer.lexical.bm25 import relaxable_phrases
from indexer.lexical.catexpr import CategoryExpr, parse_category_expr
from indexer.lexical.query import ParsedQuery, parse_query
from indexer.search import fusion
from indexer.search import related as related_ranking
from indexer.search.catalog import Catalog
from indexer.search.hits import DailyList, Hit, SearchResponse, build_hits
from indexer.search.published import PublishedIndex, PublishedVersion
from indexer.search.search_request import (
    DAILY_PAGE_SIZE,
    DEFAULT_MODE,
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    MODES,
    RESULT_WINDOW,
    SORTS,
    SearchRequest,
    check_page,
)
from indexer.settings import Settings
from indexer.text import zh_en
from indexer.text.keywords import Keyword
from indexer.text.tokenizer import default_tokenizer, has_cjk

_SIDE_POOL: ThreadPoolExecutor | None = None
_SIDE_POOL_LOCK = threading.Lock()


def _side_pool() -> ThreadPoolExecutor:
    """Two threads for work that runs beside a request's own (a related lookup's
    embedding neighbours); created on first use, shared by every engine in the process."""
    global _SIDE_POOL
    if _SIDE_POOL is None:
        with _SIDE_POOL_LOCK:
            if _SIDE_POOL is None:
                _SIDE_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="papers-side")
    return _SIDE_POOL


CANDIDATES = 200  # per retriever, for fusion

__all__ = ["SearchEngine", "Hit", "SearchResponse", "DailyList", "SearchRequest", "MODES", "SORTS", "RESULT_WINDOW",
           "CANDIDATES"]


@dataclass
class _Search:
    """One search under way: the request, its query parsed, and the mode it runs in (the
    asked one, or bm25 with the reason in ``fallback``)."""

    req: SearchRequest
    q: str
    parsed: ParsedQuery
    cats: CategoryExpr | None
    mode: str
    fallback: str | None
    t0: float

    @property
    def offset(self) -> int:
        return self.req.offset

    @property
    def limit(self) -> int:
        return self.req.size

    def response(self, total: int, hits: list[Hit], **extra: Any) -> SearchResponse:
        return SearchResponse(total, hits, _ms(self.t0), self.mode, self.q, self.req.page, self.req.size,
                              fallback=self.fallback, **extra)


class SearchEngine:
    """Ranking over the published index (:attr:`published`) and the papers database (:attr:`catalog`)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = open_database(settings)
        self.catalog = Catalog(self.db)
        self.published = PublishedIndex(settings)
        self._cat_cache: tuple[int, list[tuple[str, int]]] | None = None

    @classmethod
    def open(cls, settings: Settings) -> SearchEngine:
        return cls(settings)

    # -- versions (indexer.search.published) ---------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.published.ready

    @property
    def version(self) -> int:
        return self.published.version

    @property
    def _state(self) -> PublishedVersion | None:
        """The loaded version, None before the first build (:meth:`_require` raises instead)."""
        return self.published.state

    def index_problem(self) -> str | None:
        """Why the loaded version cannot answer what its manifest promises (None: it can)."""
        return self.published.index_problem()

    def reload_if_changed(self) -> bool:
        return self.published.reload_if_changed()

    def _require(self) -> PublishedVersion:
        return self.published.require()

    def warm_up(self) -> None:
        """Load the query models now, so the first search does not pay seconds of loading."""
        self.published.warm_up()

    # -- components -----------------------------------------------------------------
    def embedder(self, model: str):
        return self.published.embedder(model)

    def extractor(self):
        return self.published.extractor()

    def embedding_build(self) -> dict[str, Any] | None:
        """The last embedding build's progress (:mod:`indexer.embed_progress`), if any."""
        return self.published.embedding_build()

    # -- dense runs -------------------------------------------------------------------
    def _dense_space(self, text: str) -> str | None:
        """Which embedding space answers this text: multilingual for CJK text."""
        state = self._state
        if state is None or not state.stores:
            return None
        main = self.settings.embedding_model
        multi = self.settings.multilingual_model
        if has_cjk(text) and multi in state.stores:
            return multi
        if main in state.stores:
            return main
        return next(iter(state.stores))

    def dense_missing(self, text: str) -> str | None:
        """Why this text cannot be searched by meaning now (None when it can): no dense
        space published yet (with the running build's progress), or Chinese text while
        the multilingual space is not. The search then says so (``fallback``)."""
        state = self._state
        multi = self.settings.multilingual_model
        if state is not None and state.stores and not (has_cjk(text) and multi and multi not in state.stores):
            return None
        what = "the multilingual space (Chinese text) is" if state is not None and state.stores else "embeddings are"
        build = self.embedding_build()
        if build and build.get("state") == "running":
            return f"{what} still being built ({describe(build)})"
        if build and build.get("state") in ("interrupted", "failed"):
            return f"the embedding build stopped ({describe(build)})"
        return f"{what} not built yet (run `papers build`)"

    def _dense_run(self, text: str, k: int, exclude: Iterable[str] = (), space: str | None = None) -> list[tuple[str, float]]:
        space = space or self._dense_space(text)
        if space is None or not text.strip():
            return []
        vec = self.embedder(space).encode([text])[0]
        return list(self._require().stores[space].search(vec, k, exclude=tuple(exclude)))

    def _aux_space(self, text: str) -> str | None:
        """The multilingual space as hybrid's auxiliary run for text the main model
        answers (fusion.hybrid's ``aux``); None when it is not built."""
        state = self._state
        multi = self.settings.multilingual_model
        if state is None or not multi or multi not in state.stores:
            return None
        return multi if self._dense_space(text) != multi else None

    # -- search ---------------------------------------------------------------------
    def search(
        self,
        q: str | SearchRequest = "",
        mode: str = DEFAULT_MODE,
        cat: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        sort: str = DEFAULT_SORT,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
        prefs: Sequence[str] | None = None,
    ) -> SearchResponse:
        """Answer a search, asked as a :class:`SearchRequest` (the API and the web page) or by
        its fields (the other arguments): a filter listing (no query), one paper (an id or
        URL), newest first (sort=date), or ranked by BM25 alone or with the dense run(s)."""
        t0 = time.perf_counter()
        if isinstance(q, SearchRequest):
            req = q
        else:
            req = SearchRequest(q=q, mode=mode, cat=cat, date_from=date_from, date_to=date_to, sort=sort,
                                page=page, size=size, prefs=prefs)
        req.check()
        cats = parse_category_expr(req.cat) if req.cat else None
        state = self._require()
        q = (req.q or "").strip()
        if not q:
            return self._list_filtered(state, req, cats, t0)
        parsed = parse_query(q)
        if parsed.arxiv_id:
            hits = self._hits([(parsed.arxiv_id, 1.0)], set())
            return SearchResponse(len(hits), hits, _ms(t0), req.mode, q, req.page, req.size, arxiv_id=parsed.arxiv_id)
        mode, fallback = self._mode_for(req.mode, parsed.text)
        s = _Search(req, q, parsed, cats, mode, fallback, t0)
        if req.sort == "date":
            return self._by_date(state, s)
        if mode == "bm25":
            return self._lexical(state, s)
        return self._fused(state, s)

    def _list_filtered(self, state: PublishedVersion, req: SearchRequest, cats: CategoryExpr | None, t0: float) -> SearchResponse:
        """No query: the papers the filters match, newest first (or ❤-ordered)."""
        if cats is None and req.date_from is None and req.date_to is None:
            raise InvalidQuery("empty query: give words, a field like au:name, or a category filter")
        prefs_order = req.sort == "prefs"
        offset, limit = req.offset, req.size
        res = state.bm25.ids_matching(cats, req.date_from, req.date_to, sort="date", offset=0 if prefs_order else offset,
                                      limit=RESULT_WINDOW if prefs_order else limit)
        ranked = [(h.id, h.score) for h in res.hits]
        if prefs_order:
            ranked = self._rerank_prefs(ranked, req.prefs)[offset : offset + limit]
        hits = self._hits(ranked, set())
        return SearchResponse(res.total, hits, _ms(t0), "bm25", "", req.page, req.size)

    def _mode_for(self, mode: str, dense_text: str) -> tuple[str, str | None]:
        """The mode a query runs in, and why it is not the one asked for (None: it is):
        a query without free text, or without a dense space for it, runs on BM25; a dense
        search without its space is refused (DenseUnavailable)."""
        if mode != "bm25" and not dense_text.strip():
            return "bm25", "the query has no free text to embed (only fields or exclusions)"
        if mode != "bm25" and (missing := self.dense_missing(dense_text)):
            if mode == "dense":
                raise DenseUnavailable(f"dense search is not available: {missing}")
            return "bm25", f"{missing}; keyword (BM25) results only"
        return mode, None

    def _by_date(self, state: PublishedVersion, s: _Search) -> SearchResponse:
        """Matching papers newest first; quoted phrases nothing holds are searched as words."""
        parsed, cats, req = s.parsed, s.cats, s.req
        res = state.bm25.search(parsed, cats=cats, date_from=req.date_from, date_to=req.date_to, sort="date", offset=s.offset, limit=s.limit)
        relaxed: list[str] = relaxable_phrases(parsed) if res.total == 0 else []
        if relaxed:
            res = state.bm25.search(parsed, cats=cats, date_from=req.date_from, date_to=req.date_to, sort="date", offset=s.offset, limit=s.limit, relax=True)
        ranked = [(h.id, h.score) for h in res.hits]
        return s.response(res.total, self._hits(ranked, set(parsed.positive_terms), s.q),
                          relaxed=relaxed, exact_total=0 if relaxed else None)

    def _lexical(self, state: PublishedVersion, s: _Search) -> SearchResponse:
        """BM25 ranking (indexer.lexical.ranking.rank), by relevance or ❤-ordered."""
        parsed, req = s.parsed, s.req
        tr = _translation(parsed.text)
        prefs_order = req.sort == "prefs"
        window = RESULT_WINDOW if prefs_order else s.limit
        lexr = lexical.rank(state.bm25, parsed, texts=self._texts, cats=s.cats, date_from=req.date_from, date_to=req.date_to,
                            offset=0 if prefs_order else s.offset, limit=window, translated=tr.units)
        ranked = [(h.id, h.score) for h in lexr.hits]
        if prefs_order:
            ranked = self._rerank_prefs(ranked, req.prefs)[s.offset : s.offset + s.limit]
        return s.response(lexr.total, self._hits(ranked, set(parsed.positive_terms) | _translated_terms(tr), _words(s.q, tr)),
                          relaxed=lexr.relaxed, exact_total=lexr.exact_total, translated=tr.shown)

    def _fused(self, state: PublishedVersion, s: _Search) -> SearchResponse:
        """Dense or hybrid ranking, by relevance or ❤-ordered: the dense run(s) under the
        query's filters, fused with the BM25 run (hybrid)."""
        parsed, req, cats = s.parsed, s.req, s.cats
        tr = _translation(parsed.text)
        dense_text = parsed.text
        offset, limit = s.offset, s.limit
        need = max(CANDIDATES, offset + limit)
        # no feedback here: the dense run already brings in the vocabulary the query lacks, and
        # feeding back on top of it measured a wash (mean +0.0015 nDCG@10 without it on SciFact,
        # CISI, CRAN, MED; SciFact 0.728 -> 0.743), at the cost of a second BM25 pass
        lex = lexical.rank(state.bm25, parsed, texts=self._texts, cats=cats, date_from=req.date_from, date_to=req.date_to,
                           offset=0, limit=need, translated=tr.units, feedback=False)
        lex_run = [(h.id, h.score) for h in lex.hits]
        filtered = bool(cats or req.date_from or req.date_to)
        depth = need * 3 if filtered else need  # room for the hits the filters drop
        dense_run = self._dense_run(dense_text, depth)
        aux_space = self._aux_space(dense_text) if s.mode == "hybrid" else None
        aux_run = self._dense_run(dense_text, depth, space=aux_space) if aux_space else []
        if filtered or parsed.must_not_terms:
            dense_run, aux_run = self._restrict([dense_run, aux_run], parsed, cats, req.date_from, req.date_to, need)
        if s.mode == "dense":
            ranked = dense_run
            total = len(dense_run)
        else:
            evidence = fusion.query_evidence(parsed, state.bm25.doc_freq, state.bm25.num_docs, tr.weights, tr.coverage)
            ranked = self._fuse(lex_run, dense_run, dense_text, evidence=evidence, aux=aux_run,
                                lex_weight=fusion.lex_weight(bool(tr)))
            total = max(lex.total, len(ranked))
        if req.sort == "prefs":
            ranked = self._rerank_prefs(ranked, req.prefs)
        ranked = ranked[offset : offset + limit]
        return s.response(total, self._hits(ranked, set(parsed.positive_terms) | _translated_terms(tr), _words(s.q, tr)),
                          relaxed=lex.relaxed, exact_total=lex.exact_total, translated=tr.shown)

    def _restrict(self, runs: list[list[tuple[str, float]]], parsed, cats, date_from, date_to,
                  need: int) -> list[list[tuple[str, float]]]:
        """Dense runs under the query's filters and exclusions (BM25 applies them itself);
        the rows and the excluded terms are looked up once for all runs."""
        state = self._require()
        if cats or date_from or date_to:
            ids = dict.fromkeys(d for run in runs for d, _ in run)
            allowed = {d for d, _ in self._filter([(d, 0.0) for d in ids], cats, date_from, date_to)}
            runs = [[(d, s) for d, s in run if d in allowed][:need] for run in runs]
        if parsed.must_not_terms:
            kept = list(dict.fromkeys(d for run in runs for d, _ in run))
            banned = state.bm25.score_ids(dict.fromkeys(parsed.must_not_terms, 1.0), kept)
            runs = [[(d, s) for d, s in run if not banned.get(d)] for run in runs]
        return runs

    def _fuse(self, lex: list[tuple[str, float]], dense: list[tuple[str, float]], text: str,
              evidence: float | None = None, aux: list[tuple[str, float]] | None = None,
              lex_weight: float = fusion.LEX_WEIGHT) -> list[tuple[str, float]]:
        """Hybrid ranking (indexer.search.fusion.hybrid): each run weighted by how sure its
        retriever is about this text, so neither drags the other down."""
        fused = fusion.hybrid(lex, dense, query=text, evidence=evidence, dense_model=self._dense_space(text),
                              aux=aux or [], aux_model=self.settings.multilingual_model or None, lex_weight=lex_weight)
        return [(str(d), s) for d, s in fused]

    def _rerank_prefs(self, ranked: list[tuple[str, float]], prefs: Sequence[str] | None) -> list[tuple[str, float]]:
        """❤ sort: BM25 of each candidate against the reader's preference keywords
        (Cool Papers' method); ties keep the original order."""
        weights = self._pref_terms(prefs)
        if not weights or not ranked:
            return ranked
        scores = self._require().bm25.score_ids(weights, [i for i, _ in ranked])
        order = sorted(range(len(ranked)), key=lambda i: (-scores.get(ranked[i][0], 0.0), i))
        return [(ranked[i][0], scores.get(ranked[i][0], 0.0)) for i in order]

    @staticmethod
    def _pref_terms(prefs: Sequence[str] | None) -> dict[str, float]:
        weights: dict[str, float] = {}
        tok = default_tokenizer()
        for rank, word in enumerate((prefs or [])[:20]):
            for t in tok.tokenize(word):
                weights[t] = weights.get(t, 0.0) + 1.0 / (1 + 0.05 * rank)
        return weights

    def _filter(self, run: list[tuple[str, float]], cats, date_from, date_to) -> list[tuple[str, float]]:
        if not run:
            return run
        rows = self._rows([i for i, _ in run])
        out = []
        for pid, score in run:
            r = rows.get(pid)
            if r is None:
                continue
            if cats is not None and not cats.matches(r.categories or []):
                continue
            if date_from and r.published < date_from:
                continue
            if date_to and r.published > date_to:
                continue
            out.append((pid, score))
        return out

    def _texts(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(title, abstract) of papers: the text pseudo-relevance feedback reads."""
        return self.catalog.texts(ids)

    # -- rows → hits --------------------------------------------------------------------
    def _rows(self, ids: Sequence[str]) -> dict[str, Any]:
        return self.catalog.rows(ids)

    def _hits(self, ranked: Sequence[tuple[str, float]], terms: set[str], words: str | None = None) -> list[Hit]:
        """Hits with highlights of ``terms`` (indexer.search.hits.build_hits)."""
        return build_hits(self._rows([i for i, _ in ranked]), ranked, terms, words)

    # -- papers -------------------------------------------------------------------------
    @staticmethod
    def normalize_id(paper_id: str) -> str:
        try:
            return normalize_arxiv_id(paper_id)
        except InvalidRecord as e:
            raise InvalidInput(str(e), code="invalid_id") from e

    def paper(self, paper_id: str) -> dict[str, Any]:
        row = self.catalog.paper(self.normalize_id(paper_id))
        return {
            "id": row.id,
            "title": row.title,
            "abstract": row.abstract,
            "authors": list(row.authors or []),
            "primary_category": row.primary_category,
            "categories": list(row.categories or []),
            "published": row.published.isoformat(),
            "updated": row.updated.isoformat() if row.updated else None,
            "versions": row.versions,
            "doi": row.doi,
            "journal_ref": row.journal_ref,
            "comments": row.comments,
            "license": row.license,
            "withdrawn": row.withdrawn,
            "abs_url": f"https://arxiv.org/abs/{row.id}",
            "pdf_url": f"https://arxiv.org/pdf/{row.id}",
        }

    def _source(self, paper_id: str) -> Any:
        """``(id, title, abstract, authors, keywords)`` of a paper (:meth:`Catalog.source`)."""
        return self.catalog.source(self.normalize_id(paper_id))

    def _source_keywords(self, row: Any, k: int = 15) -> list[Keyword]:
        """The stored keywords of a :meth:`_source` row, or (not built yet) extracted now."""
        if row.keywords:
            return [Keyword.from_stored(kw) for kw in row.keywords[:k]]
        return self.extractor().extract(row.abstract, k=k, title=row.title)

    def paper_keywords(self, paper_id: str, k: int = 15) -> list[Keyword]:
        return self._source_keywords(self._source(paper_id), k)

    def keywords(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        return [kw.to_dict() for kw in self.extractor().extract(text, k=k)]

    # -- related / recommend / similar ---------------------------------------------------
    def _explain(self, hits: list[Hit], source_keywords: Sequence[Keyword]) -> list[Hit]:
        """Attach to each hit the source keywords it shares: those all of whose index terms
        occur in the hit's title or abstract (strongest source keywords first)."""
        tok = default_tokenizer()
        src = [(kw.keyword, frozenset(kw.terms or tok.tokenize(kw.keyword))) for kw in source_keywords]
        word_terms: dict[str, frozenset[str]] = {}  # words of the source keywords, tokenised once per call
        for h in hits:
            hit_terms = set(tok.tokenize(h.title + " " + h.abstract))
            seen: set[frozenset[str]] = set()  # by index terms: "prototype" = "prototypes"
            shared, partial = [], []
            for name, terms in src:
                if terms and terms <= hit_terms:
                    if terms not in seen:
                        seen.add(terms)
                        shared.append(name)
                elif not terms.isdisjoint(hit_terms):  # a keyphrase in part: name the words it shares
                    for word in name.split():
                        wt = word_terms.get(word)
                        if wt is None:
                            wt = word_terms[word] = frozenset(tok.tokenize(word))
                        if wt and wt <= hit_terms and wt not in seen:
                            seen.add(wt)
                            partial.append(word)
            h.shared_keywords = (shared + partial)[:6]
        return hits

    def related(self, paper_id: str, k: int = 10, *, dense_weight: float | None = None) -> list[Hit]:
        """Papers related to one paper (indexer.search.related: its text as the query, co-authors,
        fused with its embedding neighbours, ``dense_weight`` defaulting to
        :data:`indexer.search.related.DENSE_WEIGHT`); each hit says which of the paper's keywords
        it shares."""
        state = self._require()
        src = self._source(paper_id)
        pid = src.id
        store = state.stores.get(self.settings.embedding_model) or next(iter(state.stores.values()), None)
        # the embedding neighbours are searched beside the lexical run (both release the
        # GIL: HNSW at 1M, a BLAS product below it), so a lookup waits for the longer one
        neighbours = _side_pool().submit(store.similar, pid, k * 5) if store is not None else None
        kws = self._source_keywords(src)
        weights = related_ranking.text_query(src.title, src.abstract, state.bm25.approx_doc_freq, state.bm25.num_docs,
                                             doc_freqs=state.bm25.approx_doc_freqs)
        lex = related_ranking.rank_related(state.bm25, weights, authors=src.authors or [], exclude=(pid,))
        dense = [(i, s) for i, s in neighbours.result() if i != pid] if neighbours is not None else []
        ranked = related_ranking.fuse(lex, dense, dense_weight)
        ranked = [(i, s) for i, s in ranked if i != pid][:k]
        return self._explain(self._hits(ranked, set(weights), " ".join(kw.keyword for kw in kws)), kws)

    def similar_text(self, text: str, k: int = 20, *, dense_weight: float | None = None) -> list[Hit]:
        """Related work for any pasted text (English or Chinese): the text as the query
        (indexer.search.related), fused with its dense neighbours; explained by its keywords."""
        if not text or not text.strip():
            raise InvalidInput("text is empty")
        state = self._require()
        kws = self.extractor().extract(text, k=15)
        weights = related_ranking.text_query("", text[:20000], state.bm25.approx_doc_freq, state.bm25.num_docs,
                                             related_ranking.TEXT_QUERY_TERMS, doc_freqs=state.bm25.approx_doc_freqs)
        tr = zh_en.translate(text[:20000]) if has_cjk(text) else zh_en.Translation()
        for en, w in tr.weights.items():  # a Chinese text is also searched by its English terms
            weights[en] = weights.get(en, 0.0) + w
        lex = related_ranking.rank_related(state.bm25, weights)
        dense = self._dense_run(text[:5000], k * 5) if dense_weight != 0 else []
        if dense and has_cjk(text) and not tr:  # the lexical run cannot read this text: the encoder decides
            ranked = self._fuse(lex, dense, text)[:k]
        else:
            ranked = related_ranking.fuse(lex, dense, dense_weight)[:k]
        words = " ".join([*(kw.keyword for kw in kws), *(en for _, shown in tr.matched for en in shown)])
        return self._explain(self._hits(ranked, set(weights) | _translated_terms(tr), words), kws)

    def recommend(self, liked: Sequence[str], disliked: Sequence[str] = (), k: int = 20) -> list[Hit]:
        """Papers like the ``liked`` ones and unlike the ``disliked`` ones: their stored
        keywords as a BM25 query, fused with the dense neighbours of their centroid."""
        state = self._require()
        liked_ids, disliked_ids = self._known_ids(liked, disliked)
        stored = self.catalog.stored_keywords(liked_ids + disliked_ids)
        weights = _keyword_weights([(stored.get(i, []), 1.0) for i in liked_ids] + [(stored.get(i, []), -0.5) for i in disliked_ids])
        exclude = set(liked_ids) | set(disliked_ids)
        lex = [(h.id, h.score) for h in state.bm25.search_terms(weights, limit=k * 5, exclude_ids=tuple(exclude))] if weights else []
        dense = self._centroid_run(state, liked_ids, disliked_ids, k * 5, exclude)
        ranked = self._fuse(lex, dense, "") if dense else lex
        ranked = [(i, s) for i, s in ranked if i not in exclude][:k]
        liked_kws = [kw for pid in liked_ids for kw in stored.get(pid, [])[:10]]
        return self._explain(self._hits(ranked, set()), liked_kws)

    def _known_ids(self, liked: Sequence[str], disliked: Sequence[str]) -> tuple[list[str], list[str]]:
        """The liked and disliked ids normalised, those not in the database dropped;
        InvalidInput without liked ids, NotFound when none of them is known."""
        liked_ids = [self.normalize_id(i) for i in liked]
        disliked_ids = [self.normalize_id(i) for i in disliked]
        if not liked_ids:
            raise InvalidInput("give at least one liked paper id")
        known = self._rows(liked_ids + disliked_ids)
        liked_ids = [i for i in liked_ids if i in known]
        disliked_ids = [i for i in disliked_ids if i in known]
        if not liked_ids:
            raise NotFound("none of the liked papers is in the index")
        return liked_ids, disliked_ids

    def _centroid_run(self, state: PublishedVersion, liked_ids: list[str], disliked_ids: list[str], depth: int,
                      exclude: set[str]) -> list[tuple[str, float]]:
        """Nearest papers to the liked papers' centroid, half the disliked ones' pushed away
        (the main embedding space; empty without one or without a liked vector)."""
        import numpy as np  # heavy: numpy only when recommending by meaning

        store = state.stores.get(self.settings.embedding_model) or next(iter(state.stores.values()), None)
        if store is None:
            return []
        pos = [v for v in (store.vector(i) for i in liked_ids) if v is not None]
        neg = [v for v in (store.vector(i) for i in disliked_ids) if v is not None]
        if not pos:
            return []
        centroid = np.mean(pos, axis=0) - (0.5 * np.mean(neg, axis=0) if neg else 0.0)
        norm = float(np.linalg.norm(centroid))
        if norm <= 0:
            return []
        return [(i, s) for i, s in store.search((centroid / norm).astype("float32"), depth, exclude=tuple(exclude))]

    # -- lists ------------------------------------------------------------------------------
    def daily(self, catexpr: str, day: date | None = None, page: int = 1, size: int = DAILY_PAGE_SIZE, prefs: Sequence[str] | None = None) -> DailyList:
        expr = parse_category_expr(catexpr)
        check_page(page, size)
        day, prev_day, next_day, ids = self.catalog.day_listing(expr, day)
        if day is None:
            return DailyList(None, None, None, 0, [], str(expr))
        ranked = [(i, 0.0) for i in ids]
        if prefs:
            self._require()
            ranked = self._rerank_prefs(ranked, prefs)
        window = ranked[(page - 1) * size : page * size]
        return DailyList(day, prev_day, next_day, len(ids), self._hits(window, set()), str(expr))

    def categories(self) -> list[tuple[str, int]]:
        version = self.version
        if self._cat_cache and self._cat_cache[0] == version:
            return self._cat_cache[1]
        result = self.catalog.category_counts()
        self._cat_cache = (version, result)
        return result

    def stats(self) -> dict[str, Any]:
        papers, newest, run = self.catalog.corpus_stats()
        state = self._state
        return {
            "papers": papers,
            "newest_paper": newest.isoformat() if newest else None,
            "index_version": state.manifest.version if state else 0,
            "index_built_at": state.manifest.created_at if state else None,
            "indexed_docs": state.manifest.docs if state else 0,
            "embedding_models": sorted(state.stores) if state else [],
            "embedding_build": self.embedding_build(),
            "last_nightly": None
            if run is None
            else {
                "started_at": run.started_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "status": run.status,
                "inserted": run.inserted,
                "updated": run.updated,
                "message": run.message,
            },
        }


def _keyword_weights(keyword_sets: Iterable[tuple[Sequence[Keyword], float]]) -> dict[str, float]:
    """A BM25 query from papers' stored keywords: each of a paper's first 10 keywords adds
    ``sign × weight`` to each of its terms; terms left positive are kept."""
    weights: dict[str, float] = {}
    for kws, sign in keyword_sets:
        for kw in kws[:10]:
            for t in kw.terms:
                weights[t] = weights.get(t, 0.0) + sign * float(kw.weight)
    return {t: w for t, w in weights.items() if w > 0}


def _translation(text: str) -> zh_en.Translation:
    """What the Chinese parts of ``text`` are also searched as (an empty translation without any)."""
    return zh_en.translate(text) if has_cjk(text) else zh_en.Translation()


def _words(q: str, tr: zh_en.Translation) -> str:
    """The words highlighting may mark: the query's, and the English its Chinese became."""
    return " ".join([q, *(en for _, shown in tr.matched for en in shown)])


def _translated_terms(tr: zh_en.Translation) -> set[str]:
    """Index terms of a translation (for highlighting the English words it searched)."""
    return {w for key in tr.weights for w in key.split()}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
