"""SearchEngine: the read side the service (and the CLI) calls.

It joins the published artifacts — BM25 index, embedding stores, stored keywords — with
the database rows that hold what is shown. Why one facade: the HTTP API, the web UI,
feeds and `papers search` must rank identically, so ranking lives here once.

The engine follows the published manifest: :meth:`reload_if_changed` is a cheap stat
per request, and a new version is loaded beside the old one and swapped in by one
attribute assignment, so a running service switches without a restart or a failed
request. A corrupt new version is refused and the loaded one keeps serving.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, not_, or_, select

from indexer import fusion, lexical, zh_en
from indexer import related as related_ranking
from indexer.bm25 import relaxable_phrases
from indexer.db import open_database
from indexer.errors import DenseUnavailable, IndexUnavailable, InvalidInput, InvalidQuery, NotFound
from indexer.manifest import Manifest, manifest_stamp
from indexer.models import IngestRun, Paper, PaperCategory, PaperKeywords
from indexer.paths import bm25_path, current_manifest, embeddings_path
from indexer.records import InvalidRecord, normalize_arxiv_id
from indexer.settings import Settings
from indexer.tokenizer import default_tokenizer, has_cjk

log = logging.getLogger(__name__)

MODES = ("bm25", "dense", "hybrid")
SORTS = ("relevance", "date", "prefs")
RESULT_WINDOW = 1000  # like Cool Papers: no result beyond the 1000th
CANDIDATES = 200  # per retriever, for fusion
#: The rows behind hits, built once: an expanding IN takes the ids at execution, so a page
#: of hits does not pay for building and caching a new statement (half of _rows' time).
_ROWS_SELECT = select(
    Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.categories, Paper.published, Paper.updated, Paper.withdrawn
).where(Paper.id.in_(bindparam("ids", expanding=True)))


@dataclass
class Hit:
    id: str
    title: str
    authors: list[str]
    categories: list[str]
    published: date
    updated: date | None
    score: float
    title_html: str
    snippet_html: str
    abstract: str = ""
    shared_keywords: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "authors": self.authors,
            "categories": self.categories,
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat() if self.updated else None,
            "score": round(float(self.score), 6),
            "title_html": self.title_html,
            "snippet_html": self.snippet_html,
            "shared_keywords": self.shared_keywords,
        }


@dataclass
class SearchResponse:
    total: int
    hits: list[Hit]
    took_ms: float
    mode: str
    query: str
    page: int = 1
    size: int = 20
    arxiv_id: str | None = None  # set when the query named one paper (id or URL)
    relaxed: list[str] = field(default_factory=list)  # quoted phrases searched as words (lexical.rank)
    exact_total: int | None = None  # papers holding those phrases, when ``relaxed``
    translated: str = ""  # what the Chinese parts were searched as (indexer.zh_en), for the page
    fallback: str | None = None  # why ``mode`` is not the mode asked for (no dense space yet, …)


@dataclass
class DailyList:
    day: date | None
    prev_day: date | None
    next_day: date | None
    total: int
    hits: list[Hit]
    expr: str = ""


@dataclass
class _State:
    """Everything that belongs to one published version."""

    manifest: Manifest
    stamp: tuple[int, int] | None
    bm25: Any
    stores: dict[str, Any]


class SearchEngine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = open_database(settings)
        self._lock = threading.Lock()
        self._state: _State | None = None
        self._embedders: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._warm_on_switch = False  # set by warm_up(): only a service that warmed up once
        self._extractor = None
        self._extractor_version = -1
        self._cat_cache: tuple[int, list[tuple[str, int]]] | None = None
        self._load()

    @classmethod
    def open(cls, settings: Settings) -> SearchEngine:
        return cls(settings)

    # -- versions --------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._state is not None and self._state.manifest.version > 0

    @property
    def version(self) -> int:
        return self._state.manifest.version if self._state else 0

    def index_problem(self) -> str | None:
        """Why the loaded version cannot answer what its manifest promises (None: it can).
        More papers than the manifest is fine: a build committed and has not published yet."""
        state = self._state
        if state is None:
            return "no index has been published yet"
        docs = state.bm25.num_docs
        if docs < state.manifest.docs:
            return f"the BM25 index holds {docs} papers but version {state.manifest.version} has {state.manifest.docs}"
        return None

    def reload_if_changed(self) -> bool:
        stamp = manifest_stamp(self.settings.index_dir)
        if self._state is not None and stamp == self._state.stamp:
            return False
        with self._lock:
            if self._state is not None and manifest_stamp(self.settings.index_dir) == self._state.stamp:
                return False
            return self._load()

    def _load(self) -> bool:
        from indexer.bm25 import BM25Index

        stamp = manifest_stamp(self.settings.index_dir)
        manifest = current_manifest(self.settings)
        if self._state is not None and manifest.version == self._state.manifest.version:
            self._state.stamp = stamp
            return False
        if manifest.version == 0:
            self._state = None
            return False
        stores: dict[str, Any] = {}
        for model, info in manifest.embeddings.items():
            try:
                from indexer.embeddings import EmbeddingStore

                store = EmbeddingStore(embeddings_path(self.settings, model), model)
                store.load(info, readonly=True)
                stores[model] = store
            except IndexUnavailable as e:
                old = self._state.stores.get(model) if self._state else None
                log.error("embeddings for %s refused (%s); %s", model, e, "keeping the loaded version" if old else "dense search off")
                if old is not None:
                    stores[model] = old
        loaded = list(stores.values())
        for i, store in enumerate(loaded):  # one id list for spaces over the same papers
            any(store.share_ids(first) for first in loaded[:i])
        if self._state is not None and self._state.bm25.path == bm25_path(self.settings):
            bm25 = self._state.bm25
            bm25.reload()
        else:
            bm25 = BM25Index.open(bm25_path(self.settings), readonly=True)
        new_spaces = set(stores) - set(self._embedders)
        self._state = _State(manifest=manifest, stamp=stamp, bm25=bm25, stores=stores)
        log.info("loaded index version %d (%d docs)", manifest.version, manifest.docs)
        if new_spaces and self._warm_on_switch:
            # a version that brings a new embedding space (the first build with embeddings):
            # load its model beside the serving threads, not inside the next search
            threading.Thread(target=self._warm_up_quietly, name="papers-warm-up", daemon=True).start()
        return True

    def _require(self) -> _State:
        state = self._state
        if state is None:
            raise IndexUnavailable("no index has been built yet: run `papers build`")
        return state

    def warm_up(self) -> None:
        """Load each embedding model the published version uses, and the keyword
        extractor, so the first search does not pay seconds of model loading."""
        self._warm_on_switch = True
        state = self._state
        if state is None:
            return
        for space in state.stores:
            self.embedder(space).encode(["warm up"])
        self.extractor()

    def _warm_up_quietly(self) -> None:
        try:
            self.warm_up()
        except Exception:  # noqa: BLE001 - a failed warm-up only means the next search loads it
            log.warning("background model warm-up failed", exc_info=True)

    # -- components -----------------------------------------------------------------
    def embedder(self, model: str):
        found = self._embedders.get(model)
        if found is not None:
            return found
        with self._model_lock:  # one load per model, whichever thread asks first
            if model not in self._embedders:
                from indexer.embeddings import get_query_embedder

                self._embedders[model] = get_query_embedder(
                    model, device=self.settings.embedding_device, encoder=self.settings.query_encoder,
                    cache_dir=self.settings.data_dir / "cache", precision=self.settings.embed_precision,
                    threads=self.settings.embed_threads)
            return self._embedders[model]

    def extractor(self):
        from indexer.caches import SERVING_ENTRIES
        from indexer.keywords import DocFreqs, KeywordExtractor

        state = self._state
        version = state.manifest.version if state else 0
        if self._extractor is None or self._extractor_version != version:
            if state is not None and state.bm25.num_docs:
                df = DocFreqs.from_index(state.bm25, cache_limit=SERVING_ENTRIES)
            else:
                df = DocFreqs.shipped()
            self._extractor = KeywordExtractor(df, cache_limit=SERVING_ENTRIES)  # indexer.caches
            self._extractor_version = version
        return self._extractor

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
        from indexer.embed_progress import describe

        what = "the multilingual space (Chinese text) is" if state is not None and state.stores else "embeddings are"
        build = self.embedding_build()
        if build and build.get("state") == "running":
            return f"{what} still being built ({describe(build)})"
        if build and build.get("state") in ("interrupted", "failed"):
            return f"the embedding build stopped ({describe(build)})"
        return f"{what} not built yet (run `papers build`)"

    def embedding_build(self) -> dict[str, Any] | None:
        """The last embedding build's progress (:mod:`indexer.embed_progress`), if any."""
        from indexer.embed_progress import describe, read_progress

        build = read_progress(self.settings.index_dir)
        return None if build is None else {**build, "summary": describe(build)}

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
        q: str = "",
        mode: str = "hybrid",
        cat: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        sort: str = "relevance",
        page: int = 1,
        size: int = 20,
        prefs: Sequence[str] | None = None,
    ) -> SearchResponse:
        from indexer.catexpr import parse_category_expr
        from indexer.query import parse_query

        t0 = time.perf_counter()
        if mode not in MODES:
            raise InvalidQuery(f"mode must be one of {', '.join(MODES)}")
        if sort not in SORTS:
            raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}")
        if page < 1 or size < 1 or size > 100:
            raise InvalidQuery("page must be ≥ 1 and size between 1 and 100")
        if page * size > RESULT_WINDOW:
            raise InvalidQuery(f"results are capped at {RESULT_WINDOW}: page × size must be ≤ {RESULT_WINDOW}")
        if date_from and date_to and date_from > date_to:
            raise InvalidQuery("'from' date is after 'to' date")
        cats = parse_category_expr(cat) if cat else None
        state = self._require()
        offset, limit = (page - 1) * size, size
        q = (q or "").strip()

        if not q:
            if cats is None and date_from is None and date_to is None:
                raise InvalidQuery("empty query: give words, a field like au:name, or a category filter")
            res = state.bm25.ids_matching(cats, date_from, date_to, sort="date", offset=0 if sort == "prefs" else offset, limit=RESULT_WINDOW if sort == "prefs" else limit)
            ranked = [(h.id, h.score) for h in res.hits]
            total = res.total
            terms: set[str] = set()
            if sort == "prefs":
                ranked = self._rerank_prefs(ranked, prefs)[offset : offset + limit]
            hits = self._hits(ranked, terms)
            return SearchResponse(total, hits, _ms(t0), "bm25", q, page, size)

        parsed = parse_query(q)
        if parsed.arxiv_id:
            hits = self._hits([(parsed.arxiv_id, 1.0)], set())
            return SearchResponse(len(hits), hits, _ms(t0), mode, q, page, size, arxiv_id=parsed.arxiv_id)
        terms = set(parsed.positive_terms)
        dense_text = parsed.text
        fallback = None
        if mode != "bm25" and not dense_text.strip():
            mode, fallback = "bm25", "the query has no free text to embed (only fields or exclusions)"
        elif mode != "bm25" and (missing := self.dense_missing(dense_text)):
            if mode == "dense":
                raise DenseUnavailable(f"dense search is not available: {missing}")
            mode, fallback = "bm25", f"{missing}; keyword (BM25) results only"

        if sort == "date":
            res = state.bm25.search(parsed, cats=cats, date_from=date_from, date_to=date_to, sort="date", offset=offset, limit=limit)
            relaxed: list[str] = []
            if res.total == 0 and relaxable_phrases(parsed):
                relaxed = relaxable_phrases(parsed)
                res = state.bm25.search(parsed, cats=cats, date_from=date_from, date_to=date_to, sort="date", offset=offset, limit=limit, relax=True)
            ranked = [(h.id, h.score) for h in res.hits]
            return SearchResponse(res.total, self._hits(ranked, terms, q), _ms(t0), mode, q, page, size,
                                  relaxed=relaxed, exact_total=0 if relaxed else None, fallback=fallback)
        tr = zh_en.translate(parsed.text) if has_cjk(parsed.text) else zh_en.Translation()
        if mode == "bm25":
            window = RESULT_WINDOW if sort == "prefs" else limit
            lexr = lexical.rank(state.bm25, parsed, texts=self._texts, cats=cats, date_from=date_from, date_to=date_to,
                                offset=0 if sort == "prefs" else offset, limit=window, translated=tr.units)
            ranked = [(h.id, h.score) for h in lexr.hits]
            if sort == "prefs":
                ranked = self._rerank_prefs(ranked, prefs)[offset : offset + limit]
            return SearchResponse(lexr.total, self._hits(ranked, terms | _translated_terms(tr), _words(q, tr)), _ms(t0), mode, q, page, size,
                                  relaxed=lexr.relaxed, exact_total=lexr.exact_total, translated=tr.shown, fallback=fallback)

        # dense or hybrid, relevance or prefs order
        need = max(CANDIDATES, offset + limit)
        # no feedback here: the dense run already brings in the vocabulary the query lacks, and
        # feeding back on top of it measured a wash (mean +0.0015 nDCG@10 without it on SciFact,
        # CISI, CRAN, MED; SciFact 0.728 -> 0.743), at the cost of a second BM25 pass
        lex = lexical.rank(state.bm25, parsed, texts=self._texts, cats=cats, date_from=date_from, date_to=date_to,
                           offset=0, limit=need, translated=tr.units, feedback=False)
        lex_run = [(h.id, h.score) for h in lex.hits]
        filtered = bool(cats or date_from or date_to)
        depth = need * 3 if filtered else need  # room for the hits the filters drop
        dense_run = self._dense_run(dense_text, depth)
        aux_space = self._aux_space(dense_text) if mode == "hybrid" else None
        aux_run = self._dense_run(dense_text, depth, space=aux_space) if aux_space else []
        if filtered or parsed.must_not_terms:
            dense_run, aux_run = self._restrict([dense_run, aux_run], parsed, cats, date_from, date_to, need)
        if mode == "dense":
            ranked = dense_run
            total = len(dense_run)
        else:
            evidence = lexical.evidence(parsed, state.bm25.doc_freq, state.bm25.num_docs, tr.weights, tr.coverage)
            ranked = self._fuse(lex_run, dense_run, dense_text, evidence=evidence, aux=aux_run,
                                lex_weight=lexical.lex_weight(bool(tr)))
            total = max(lex.total, len(ranked))
        if sort == "prefs":
            ranked = self._rerank_prefs(ranked, prefs)
        ranked = ranked[offset : offset + limit]
        return SearchResponse(total, self._hits(ranked, terms | _translated_terms(tr), _words(q, tr)), _ms(t0), mode, q, page, size,
                              relaxed=lex.relaxed, exact_total=lex.exact_total, translated=tr.shown, fallback=fallback)

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
        """Hybrid ranking (indexer.fusion.hybrid): each run weighted by how sure its
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
        return {i: (r.title or "", r.abstract or "") for i, r in self._rows(ids).items()}

    # -- rows → hits --------------------------------------------------------------------
    def _rows(self, ids: Sequence[str]) -> dict[str, Any]:
        if not ids:
            return {}
        out: dict[str, Any] = {}
        with self.db.connect() as conn:
            for start in range(0, len(ids), 900):
                for r in conn.execute(_ROWS_SELECT, {"ids": list(ids[start : start + 900])}):
                    out[r.id] = r
        return out

    def _hits(self, ranked: Sequence[tuple[str, float]], terms: set[str], words: str | None = None) -> list[Hit]:
        """Hits with highlights of ``terms``; ``words`` (the query or keywords they came from)
        keeps the marks to inflections of those words (indexer.snippets)."""
        from indexer.snippets import highlight
        from indexer.tex_accents import render_tex_accents as shown

        rows = self._rows([i for i, _ in ranked])
        hits = []
        for pid, score in ranked:
            r = rows.get(pid)
            if r is None or r.withdrawn:
                continue
            title, abstract = shown(r.title), shown(r.abstract)  # display only: P\'etritis -> Pétritis
            hits.append(
                Hit(
                    id=r.id,
                    title=title,
                    authors=[shown(a) for a in r.authors or []],
                    categories=list(r.categories or []),
                    published=r.published,
                    updated=r.updated,
                    score=float(score),
                    title_html=highlight(title, terms, max_chars=0, words=words) if terms else html.escape(title),
                    snippet_html=highlight(abstract, terms, max_chars=300, words=words),
                    abstract=abstract,
                )
            )
        return hits

    # -- papers -------------------------------------------------------------------------
    @staticmethod
    def normalize_id(paper_id: str) -> str:
        try:
            return normalize_arxiv_id(paper_id)
        except InvalidRecord as e:
            raise InvalidInput(str(e), code="invalid_id") from e

    def paper(self, paper_id: str) -> dict[str, Any]:
        pid = self.normalize_id(paper_id)
        with self.db.connect() as conn:
            row = conn.execute(select(*Paper.__table__.columns).where(Paper.id == pid)).first()
        if row is None:
            raise NotFound(f"paper {pid} is not in the index")
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

    def _stored_keywords(self, ids: Sequence[str]) -> dict[str, list]:
        if not ids:
            return {}
        with self.db.connect() as conn:
            rows = conn.execute(select(PaperKeywords.paper_id, PaperKeywords.keywords).where(PaperKeywords.paper_id.in_(list(ids)))).all()
        return {r.paper_id: r.keywords or [] for r in rows}

    def _source(self, paper_id: str) -> Any:
        """``(id, title, abstract, authors, keywords)`` of a paper, its stored keywords joined in: one
        query where related() used to make three (paper row twice, keywords once).
        NotFound as :meth:`paper`."""
        pid = self.normalize_id(paper_id)
        with self.db.connect() as conn:
            row = conn.execute(
                select(Paper.id, Paper.title, Paper.abstract, Paper.authors, PaperKeywords.keywords)
                .outerjoin(PaperKeywords, PaperKeywords.paper_id == Paper.id)
                .where(Paper.id == pid)
            ).first()
        if row is None:
            raise NotFound(f"paper {pid} is not in the index")
        return row

    def _source_keywords(self, row: Any, k: int = 15) -> list[dict[str, Any]]:
        """The stored keywords of a :meth:`_source` row, or (not built yet) extracted now."""
        if row.keywords:
            return [{"keyword": kw[0], "weight": kw[1], "terms": kw[2] if len(kw) > 2 else []} for kw in row.keywords[:k]]
        return [{"keyword": kw.keyword, "weight": float(kw.weight), "terms": list(kw.terms)}
                for kw in self.extractor().extract(row.abstract, k=k, title=row.title)]

    def paper_keywords(self, paper_id: str, k: int = 15) -> list[dict[str, Any]]:
        return self._source_keywords(self._source(paper_id), k)

    def keywords(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        return [{"keyword": kw.keyword, "weight": round(float(kw.weight), 4)} for kw in self.extractor().extract(text, k=k)]

    # -- related / recommend / similar ---------------------------------------------------
    def _explain(self, hits: list[Hit], source_keywords: list[dict[str, Any]]) -> list[Hit]:
        """Attach to each hit the source keywords it shares: those all of whose index terms
        occur in the hit's title or abstract (strongest source keywords first)."""
        tok = default_tokenizer()
        src = [(kw["keyword"], frozenset(kw.get("terms") or tok.tokenize(kw["keyword"]))) for kw in source_keywords]
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
        """Papers related to one paper (indexer.related: its text as the query, co-authors,
        fused with its embedding neighbours, ``dense_weight`` defaulting to
        :data:`indexer.related.DENSE_WEIGHT`); each hit says which of the paper's keywords
        it shares."""
        state = self._require()
        src = self._source(paper_id)
        pid = src.id
        kws = self._source_keywords(src)
        weights = related_ranking.text_query(src.title, src.abstract, state.bm25.approx_doc_freq, state.bm25.num_docs,
                                             doc_freqs=state.bm25.approx_doc_freqs)
        lex = related_ranking.rank_related(state.bm25, weights, authors=src.authors or [], exclude=(pid,))
        dense: list[tuple[str, float]] = []
        store = state.stores.get(self.settings.embedding_model) or next(iter(state.stores.values()), None)
        if store is not None:
            dense = [(i, s) for i, s in store.similar(pid, k * 5) if i != pid]
        ranked = related_ranking.fuse(lex, dense, dense_weight)
        ranked = [(i, s) for i, s in ranked if i != pid][:k]
        return self._explain(self._hits(ranked, set(weights), " ".join(kw["keyword"] for kw in kws)), kws)

    def similar_text(self, text: str, k: int = 20, *, dense_weight: float | None = None) -> list[Hit]:
        """Related work for any pasted text (English or Chinese): the text as the query
        (indexer.related), fused with its dense neighbours; explained by its keywords."""
        if not text or not text.strip():
            raise InvalidInput("text is empty")
        state = self._require()
        kws = [{"keyword": kw.keyword, "weight": float(kw.weight), "terms": list(kw.terms)} for kw in self.extractor().extract(text, k=15)]
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
        words = " ".join([*(kw["keyword"] for kw in kws), *(en for _, shown in tr.matched for en in shown)])
        return self._explain(self._hits(ranked, set(weights) | _translated_terms(tr), words), kws)

    def recommend(self, liked: Sequence[str], disliked: Sequence[str] = (), k: int = 20) -> list[Hit]:
        import numpy as np

        state = self._require()
        liked_ids = [self.normalize_id(i) for i in liked]
        disliked_ids = [self.normalize_id(i) for i in disliked]
        if not liked_ids:
            raise InvalidInput("give at least one liked paper id")
        known = self._rows(liked_ids + disliked_ids)
        liked_ids = [i for i in liked_ids if i in known]
        disliked_ids = [i for i in disliked_ids if i in known]
        if not liked_ids:
            raise NotFound("none of the liked papers is in the index")
        stored = self._stored_keywords(liked_ids + disliked_ids)
        weights: dict[str, float] = {}
        for pid, sign in [(i, 1.0) for i in liked_ids] + [(i, -0.5) for i in disliked_ids]:
            for kw in stored.get(pid, [])[:10]:
                for t in kw[2] if len(kw) > 2 else []:
                    weights[t] = weights.get(t, 0.0) + sign * float(kw[1])
        weights = {t: w for t, w in weights.items() if w > 0}
        exclude = set(liked_ids) | set(disliked_ids)
        lex = [(h.id, h.score) for h in state.bm25.search_terms(weights, limit=k * 5, exclude_ids=tuple(exclude))] if weights else []
        dense: list[tuple[str, float]] = []
        store = state.stores.get(self.settings.embedding_model) or next(iter(state.stores.values()), None)
        if store is not None:
            pos = [v for v in (store.vector(i) for i in liked_ids) if v is not None]
            neg = [v for v in (store.vector(i) for i in disliked_ids) if v is not None]
            if pos:
                centroid = np.mean(pos, axis=0) - (0.5 * np.mean(neg, axis=0) if neg else 0.0)
                norm = float(np.linalg.norm(centroid))
                if norm > 0:
                    dense = [(i, s) for i, s in store.search((centroid / norm).astype("float32"), k * 5, exclude=tuple(exclude))]
        ranked = self._fuse(lex, dense, "") if dense else lex
        ranked = [(i, s) for i, s in ranked if i not in exclude][:k]
        liked_kws = [{"keyword": kw[0], "weight": kw[1], "terms": kw[2] if len(kw) > 2 else []} for pid in liked_ids for kw in stored.get(pid, [])[:10]]
        return self._explain(self._hits(ranked, set()), liked_kws)

    # -- lists ------------------------------------------------------------------------------
    def _cat_clause(self, expr):
        def one(c: str):
            return or_(PaperCategory.category == c, PaperCategory.category.like(c + ".%"))

        clauses = []
        if expr.include:
            clauses.append(exists().where(and_(PaperCategory.paper_id == Paper.id, or_(*[one(c) for c in expr.include]))))
        if expr.exclude:
            clauses.append(not_(exists().where(and_(PaperCategory.paper_id == Paper.id, or_(*[one(c) for c in expr.exclude])))))
        return and_(*clauses) if clauses else None

    # A daily list without a date opens on the latest *real batch*: a listing day brings a busy
    # category tens to hundreds of papers, while one late cross-list or replacement can put a
    # single paper on a later day (cs.AI in the sample: 1 paper on 2026-07-09, 128 on 07-01).
    # Real = at least BATCH_FRACTION of the busiest day in the BATCH_WINDOW_DAYS before the
    # newest one; a sparse category (a paper every few days) opens on its newest day as before.
    BATCH_WINDOW_DAYS = 30
    BATCH_FRACTION = 0.1

    def _latest_batch_day(self, conn, where) -> date | None:
        latest = conn.execute(select(func.max(Paper.published)).where(*where)).scalar()
        if latest is None:
            return None
        since = latest - timedelta(days=self.BATCH_WINDOW_DAYS)
        counts = conn.execute(
            select(Paper.published, func.count()).where(*where, Paper.published > since)
            .group_by(Paper.published).order_by(Paper.published.desc())
        ).all()
        busiest = max(n for _, n in counts)
        return next(d for d, n in counts if n >= self.BATCH_FRACTION * busiest)

    def daily(self, catexpr: str, day: date | None = None, page: int = 1, size: int = 25, prefs: Sequence[str] | None = None) -> DailyList:
        from indexer.catexpr import parse_category_expr

        expr = parse_category_expr(catexpr)
        if page < 1 or size < 1 or size > 100:
            raise InvalidQuery("page must be ≥ 1 and size between 1 and 100")
        where = [Paper.withdrawn.is_(False)]
        clause = self._cat_clause(expr)
        if clause is not None:
            where.append(clause)
        with self.db.connect() as conn:
            if day is None:
                day = self._latest_batch_day(conn, where)
            if day is None:
                return DailyList(None, None, None, 0, [], str(expr))
            prev_day = conn.execute(select(func.max(Paper.published)).where(*where, Paper.published < day)).scalar()
            next_day = conn.execute(select(func.min(Paper.published)).where(*where, Paper.published > day)).scalar()
            ids = [r[0] for r in conn.execute(select(Paper.id).where(*where, Paper.published == day).order_by(Paper.id))]
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
        with self.db.connect() as conn:
            rows = conn.execute(
                select(PaperCategory.category, func.count())
                .join(Paper, Paper.id == PaperCategory.paper_id)
                .where(Paper.withdrawn.is_(False))
                .group_by(PaperCategory.category)
                .order_by(func.count().desc(), PaperCategory.category)
            ).all()
        result = [(r[0], int(r[1])) for r in rows]
        self._cat_cache = (version, result)
        return result

    def stats(self) -> dict[str, Any]:
        with self.db.connect() as conn:
            papers = conn.execute(select(func.count()).select_from(Paper).where(Paper.withdrawn.is_(False))).scalar_one()
            newest = conn.execute(select(func.max(Paper.published))).scalar()
            run = conn.execute(select(*IngestRun.__table__.columns).where(IngestRun.kind == "nightly").order_by(IngestRun.id.desc()).limit(1)).first()
        state = self._state
        return {
            "papers": int(papers),
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


def _words(q: str, tr: zh_en.Translation) -> str:
    """The words highlighting may mark: the query's, and the English its Chinese became."""
    return " ".join([q, *(en for _, shown in tr.matched for en in shown)])


def _translated_terms(tr: zh_en.Translation) -> set[str]:
    """Index terms of a translation (for highlighting the English words it searched)."""
    return {w for key in tr.weights for w in key.split()}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
