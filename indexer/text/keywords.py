"""LLM-free keywords and keyphrases for any text, scored by corpus statistics.

Why this design: keyphrases are noun phrases that are frequent in the document and rare
in the corpus. So candidates come from :mod:`indexer.text.phrases` (stop-word/punctuation
chunks for English, jieba.posseg noun phrases for Chinese) and are scored TF-IDF-like:
a saturating term frequency (long papers must not let frequent generic phrases run
away), the inverse document frequency of the *phrase* (and of its words), a prior for
early first occurrence and for the title, and a length prior. No model weights; the
corpus statistics come from wherever the caller has them:

- :meth:`DocFreqs.from_index` — the live BM25 index (terms exact, phrases estimated),
- :meth:`DocFreqs.shipped` — statistics of the real 100k-paper arXiv corpus shipped
  in ``indexer/data/keyword-stats.json.gz`` (built by benchmarks/make_keyword_stats.py),
- :meth:`DocFreqs.from_texts` — the input collection itself (how benchmarks are scored).
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

from indexer.text.acronyms import acronym_key, definitions, expansion
from indexer.text.phrases import collect_candidates, document_keys
from indexer.text.tokenizer import default_tokenizer, has_cjk
from indexer.text.wordlists import is_common_word

STATS_FILE = "keyword-stats.json.gz"


class _TermIndex(Protocol):
    @property
    def num_docs(self) -> int: ...

    def doc_freq(self, term: str) -> int: ...


def _is_cjk_key(key: str) -> bool:
    return has_cjk(key)


class DocFreqs:
    """Document frequencies of tokenizer terms and of phrase keys ("graph neural network"
    → terms joined by a space). ``df`` answers both; ``num_docs`` is the corpus size."""

    def __init__(
        self,
        num_docs: int,
        counts: Mapping[str, int],
        *,
        min_df: int = 1,
        min_df_phrases: int | None = None,
        zh_num_docs: int = 0,
        source: str = "",
    ):
        self.num_docs = int(num_docs)
        self._counts = counts
        # keys below min_df were pruned: an unseen key is "rarer than min_df", not absent
        self._unseen = (min_df - 1) / 2 if min_df > 1 else 0.0
        mp = min_df if min_df_phrases is None else min_df_phrases
        self._unseen_phrase = (mp - 1) / 2 if mp > 1 else 0.0
        # Chinese keys counted over a separate (Chinese) corpus are rescaled to num_docs
        self._zh_scale = (self.num_docs / zh_num_docs) if zh_num_docs else 1.0
        self.source = source

    def df(self, term: str) -> float:
        """Number of documents containing ``term`` (a term or a space-joined phrase key)."""
        c = self._counts.get(term)
        if c is not None:
            value = float(c)
        else:
            value = self._unseen_phrase if " " in term else self._unseen
        if self._zh_scale != 1.0 and not term.isascii() and _is_cjk_key(term):
            value *= self._zh_scale
        return value

    def __contains__(self, term: str) -> bool:
        return term in self._counts

    def __len__(self) -> int:
        return len(self._counts)

    # -- constructors --------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> DocFreqs:
        """Count terms and candidate sub-phrases over a collection (one text per document)."""
        counts: Counter[str] = Counter()
        n = 0
        for text in texts:
            n += 1
            counts.update(document_keys(text or ""))
        return cls(n, dict(counts), source="input")

    @classmethod
    def shipped(cls) -> DocFreqs:
        """Statistics of the real arXiv corpus packaged with the code (loaded once)."""
        return _load_shipped()

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any], source: str = "stats") -> DocFreqs:
        counts = dict(stats.get("terms", {}))
        counts.update(stats.get("phrases", {}))
        return cls(
            stats["num_docs"],
            counts,
            min_df=int(stats.get("min_df", 1)),
            min_df_phrases=stats.get("min_df_phrases"),
            zh_num_docs=int(stats.get("zh_num_docs", 0)),
            source=source,
        )

    @classmethod
    def from_index(cls, index: _TermIndex, fallback: DocFreqs | None = None, cache_limit: int = 500_000) -> DocFreqs:
        """Terms from the index (``index.doc_freq``); phrases, which the index does not
        count, estimated from the shipped phrase statistics (rescaled to the index size)
        and capped by the rarest of their terms. An empty index gives the shipped stats.
        ``cache_limit``: keys remembered (a build sees each many times; the service caps it)."""
        shipped = fallback if fallback is not None else cls.shipped()
        if not getattr(index, "num_docs", 0):
            return shipped
        return _IndexDocFreqs(index, shipped, cache_limit)


class _IndexDocFreqs(DocFreqs):
    def __init__(self, index: _TermIndex, shipped: DocFreqs, cache_limit: int = 500_000):
        super().__init__(index.num_docs, {}, source="index")
        self._index = index
        self._shipped = shipped
        self._cache: dict[str, float] = {}
        self._cache_limit = cache_limit

    def df(self, term: str) -> float:
        cache = self._cache
        v = cache.get(term)
        if v is not None:
            return v
        if len(cache) >= self._cache_limit:
            cache.clear()
        if " " not in term:
            v = cache[term] = float(self._index.doc_freq(term))
            return v
        # a phrase: most keys of a document are seen once in a whole corpus, so this path
        # runs for nearly every candidate of a build and is kept to plain dict lookups
        term_dfs = []
        for t in term.split(" "):
            d = cache.get(t)
            term_dfs.append(d if d is not None else self.df(t))
        cap = min(term_dfs)
        shipped = self._shipped
        if shipped.num_docs and term in shipped:
            est = shipped.df(term) * self.num_docs / shipped.num_docs
        else:  # independence estimate: rare unless its words are common
            est = self.num_docs * math.prod(d / self.num_docs for d in term_dfs)
        if len(cache) >= self._cache_limit:  # its words may have filled it
            cache.clear()
        v = cache[term] = min(cap, est)
        return v

    def __contains__(self, term: str) -> bool:
        return self.df(term) > 0


@lru_cache(maxsize=1)
def _load_shipped() -> DocFreqs:
    ref = resources.files("indexer") / "data" / STATS_FILE
    if not ref.is_file():
        return DocFreqs(0, {}, source="empty")
    with ref.open("rb") as fh, gzip.open(fh, "rt", encoding="utf-8") as gz:
        stats = json.load(gz)
    return DocFreqs.from_stats(stats, source="shipped")


@dataclass(frozen=True)
class Keyword:
    """The one keyword type. A paper's keywords are stored (``paper_keywords.keywords``) as
    a JSON list of :meth:`to_stored` lists; the API shows :meth:`to_dict`. Convert only
    through these methods, so the stored format is written and read in one place."""

    keyword: str  # display phrase, surface form ("graph neural networks")
    weight: float  # relative score, the top keyword has 1.0
    terms: tuple[str, ...]  # indexer.text.tokenizer terms of the phrase (for BM25 queries)

    def to_dict(self) -> dict:
        """``{"keyword", "weight"}`` as the API and the CLI show it (weight rounded)."""
        return {"keyword": self.keyword, "weight": round(float(self.weight), 4)}

    def to_stored(self) -> list[Any]:
        """The positional list a build stores: ``[keyword, weight rounded to 4 places, [terms]]``."""
        return [self.keyword, round(float(self.weight), 4), list(self.terms)]

    @classmethod
    def from_stored(cls, stored: Sequence[Any]) -> Keyword:
        """A stored list back (:meth:`to_stored`); rows written before terms were stored
        hold only ``[keyword, weight]`` and get no terms."""
        return cls(stored[0], float(stored[1]), tuple(stored[2]) if len(stored) > 2 else ())


@dataclass(frozen=True)
class ScoringParams:
    """Knobs of the score; defaults tuned on Inspec train (docs/quality.md)."""

    tf_k: float = 1.2  # tf saturation: tf*(k+1)/(tf+k), k scaled by length/avg_length
    avg_length: float = 200.0  # words of a typical abstract
    length_power: float = 0.5  # k grows with sqrt(length): repetition counts, sub-linearly
    long_position: float = 3.0  # extra early-position bonus per log(length/avg_length)
    long_title: float = 1.0  # extra title bonus per log(length/avg_length)
    tf_k_zh: float = 3.0  # Chinese (tuned on CSL dev, the only Chinese set)
    length_zh: tuple[float, ...] = (0.7, 1.0, 1.0, 0.9, 0.8)
    overlap_penalty: float = 1.0  # score factor for a phrase nested in a better one (English)
    overlap_penalty_zh: float = 0.7  # the same for Chinese, whose sub-phrases overlap far more
    fragment_share_zh: float = 0.7  # a Chinese phrase found inside a longer one of the text at least this share of its corpus df is a fragment
    max_df_single: float = 0.2  # single words in more than this share of documents are never keywords
    term_weight: float = 0.5  # share of the mean word idf in a phrase's idf
    position: float = 0.5  # bonus for an early first occurrence
    position_scale: float = 50.0  # words
    title: float = 0.5  # bonus for a phrase that occurs in the title
    length: tuple[float, ...] = (0.7, 1.0, 1.0, 0.9, 0.8)  # prior by number of words (1..5+)


class KeywordExtractor:
    """``extract(text, k, title)`` → top-k :class:`Keyword`; safe to share between threads."""

    def __init__(self, doc_freqs: DocFreqs | None = None, params: ScoringParams | None = None,
                 cache_limit: int = 1_000_000):
        self.doc_freqs = doc_freqs if doc_freqs is not None else DocFreqs.shipped()
        self.params = params or ScoringParams()
        # key -> (df, idf): most phrase keys and words recur from document to document.
        # Emptied when full: a build over 1M papers wants it large, a long-running service
        # small (its texts are arbitrary: at 1M entries it would hold ~0.3 GB).
        self._stats: dict[str, tuple[float, float]] = {}
        self._cache_limit = cache_limit

    def _idf(self, key: str) -> float:
        return self._key_stats(key)[1]

    def _key_stats(self, key: str) -> tuple[float, float]:
        """``(df, idf)`` of a term or phrase key (cached per extractor)."""
        v = self._stats.get(key)
        if v is None:
            n = max(self.doc_freqs.num_docs, 1)
            raw = self.doc_freqs.df(key)
            df = min(raw, n)
            v = (raw, math.log(1.0 + (n - df + 0.5) / (df + 0.5)))
            if len(self._stats) >= self._cache_limit:
                self._stats = {}
            self._stats[key] = v
        return v

    def extract(self, text: str, k: int = 10, title: str = "") -> list[Keyword]:
        """Top ``k`` keywords/keyphrases of ``title`` + ``text`` (any language, any length)."""
        if k <= 0 or not ((text and text.strip()) or (title and title.strip())):
            return []
        cands, length = collect_candidates(text or "", title or "")
        if not cands:
            return []
        same_term = merge_variants(cands, text or "", title or "")
        p = self.params
        stats = self._stats
        if len(stats) >= self._cache_limit:
            stats = self._stats = {}
        scored = self._scored(cands, length, stats)
        top = _select(scored, k, p.overlap_penalty_zh, p.overlap_penalty, same_term)
        best = top[0][0] if top and top[0][0] > 0 else 1.0
        return [Keyword(cands[key].surface, score / best, cands[key].terms) for score, key in top]

    def _scored(self, cands: Mapping[str, Any], length: int,
                stats: Mapping[str, tuple[float, float]]) -> list[tuple[float, str]]:
        """``(score, key)`` of each candidate that may be a keyword (in ``cands`` order).

        One loop over the candidates with the parameters in locals: it runs for every
        candidate of every paper a build indexes. ``stats`` is the ``(df, idf)`` cache as
        :meth:`extract` found it (looked up first; :meth:`_key_stats` fills it)."""
        p = self.params
        key_stats = self._key_stats
        # BM25-style length normalisation: on an abstract tf saturates fast (one mention is
        # nearly as good as three); on a whole paper repetition is what marks the topic.
        length_factor = max(1.0, length / p.avg_length) ** p.length_power
        tf_k_en = p.tf_k * length_factor
        tf_k_zh = p.tf_k_zh * length_factor
        # ... and in a long text the title and the opening (abstract, introduction) are
        # where its own topic is stated: position counts more the longer the text.
        long_boost = math.log(max(1.0, length / p.avg_length))
        scored: list[tuple[float, str]] = []
        n_docs = max(self.doc_freqs.num_docs, 1)
        generic = p.max_df_single * n_docs
        term_weight = p.term_weight
        position_bonus = p.position + long_boost * p.long_position
        position_scale = p.position_scale
        title_bonus = p.title + long_boost * p.long_title
        length_en, length_zh = p.length, p.length_zh
        fragments = _zh_fragments(cands, key_stats, p.fragment_share_zh)
        for key, c in cands.items():
            if key in fragments:
                continue
            st = stats.get(key)
            if st is None:
                st = key_stats(key)
            terms = c.terms
            if c.words == 1 and not c.zh and is_common_word(c.surface):
                continue  # "goal", "small", "task": general English, a keyword of no paper
            if len(terms) == 1:
                if n_docs > 50 and st[0] > generic:
                    continue  # "model", "method", "experiments": true of most papers, a keyword of none
                phrase_idf = st[1]
            else:
                word_idf = 0.0
                for t in terms:
                    v = stats.get(t)
                    if v is None:
                        v = key_stats(t)
                    word_idf += v[1]
                phrase_idf = (1 - term_weight) * st[1] + term_weight * word_idf / len(terms)
            zh = c.zh
            tf_k = tf_k_zh if zh else tf_k_en
            count = c.count
            tf = count * (tf_k + 1) / (count + tf_k)
            prior = 1.0 + position_bonus / (1.0 + c.first / position_scale)
            if c.in_title:
                prior += title_bonus
            lengths = length_zh if zh else length_en
            length_prior = lengths[min(c.words, len(lengths)) - 1]
            scored.append((tf * phrase_idf * prior * length_prior, key))
        return scored


# Generic head nouns: "graph neural network models" is "graph neural networks" said longer.
_GENERIC_HEADS = frozenset(
    """model models method methods approach approaches framework frameworks system systems
    technique techniques architecture architectures task tasks problem problems setting
    settings scheme schemes algorithm algorithms strategy strategies mechanism mechanisms
    module modules pipeline pipelines paradigm paradigms""".split()
)


def _absorb(cands: dict[str, Any], src: str, dst: str) -> None:
    """Count the occurrences of candidate ``src`` as occurrences of ``dst`` and drop ``src``."""
    a, b = cands.pop(src), cands[dst]
    b.count += a.count
    b.first = min(a.first, b.first)
    b.in_title = b.in_title or a.in_title


def merge_variants(cands: dict[str, Any], text: str, title: str = "") -> dict[str, str]:
    """Merge the candidates of one text that name one term (in place), so that it takes one
    keyword slot, under its long form:

    - an acronym into its expansion, when the text defines it ("graph neural networks
      (GNNs)") or, failing that, when the text also uses the expansion the arXiv corpus
      gives it (indexer.text.acronyms); "GNN" and "GNNs" both;
    - a plural acronym into the singular one ("LLMs" into "LLM");
    - phrases that differ only by a generic head noun ("graph neural network models",
      "graph neural networks"; "tamed euler scheme", "tamed euler method") are not
      merged but returned, ``{phrase: key without the head}``: only the best scored of
      them is a keyword (:func:`_select`).

    Singular and plural of words need nothing here: they share a key (tokenizer stems)."""
    if not cands:
        return {}
    tok = default_tokenizer().tokenize
    _merge_acronyms(cands, _defined_acronyms(cands, text, title, tok), tok)
    return _generic_head_variants(cands, tok)


def _defined_acronyms(cands: Mapping[str, Any], text: str, title: str,
                      tok: Callable[[str], list[str]]) -> dict[str, str]:
    """Acronym key -> long form key, for each acronym the text defines ("graph neural
    networks (GNNs)") whose long form is a candidate (the first definition wins)."""
    pairs: dict[str, str] = {}  # acronym key -> long form key
    if any(not c.zh for c in cands.values()):
        for acronym, long_form in definitions(f"{title}\n{text}" if title else text):
            long_key = " ".join(tok(long_form))
            if long_key in cands and acronym not in pairs:
                pairs[acronym] = long_key
    return pairs


def _merge_acronyms(cands: dict[str, Any], pairs: Mapping[str, str], tok: Callable[[str], list[str]]) -> None:
    """Absorb each acronym candidate into its long form (defined in ``pairs``, else the
    shipped expansion when the text uses it), else a plural acronym into its singular."""
    for key, c in list(cands.items()):
        if c.words != 1 or c.zh or c.surface.islower() or key not in cands:
            continue  # (most words: lower case, no acronym)
        acr = acronym_key(c.surface)
        if acr is None:
            continue
        target = pairs.get(acr)
        if target is None:
            shipped_form = expansion(acr)
            target = " ".join(tok(shipped_form)) if shipped_form else None
        if target and target in cands and target != key:
            _absorb(cands, key, target)
            continue
        if c.surface.endswith("s"):  # "LLMs" and "LLM"
            singular = " ".join(tok(c.surface[:-1]))
            if singular != key and singular in cands:
                _absorb(cands, key, singular)


def _generic_head_variants(cands: Mapping[str, Any], tok: Callable[[str], list[str]]) -> dict[str, str]:
    """``{phrase key: key without its generic head noun}`` of the phrases that end in one
    ("graph neural network models" -> "graph neural network")."""
    same: dict[str, str] = {}
    heads = _GENERIC_HEADS
    for key, c in cands.items():
        if c.words < 2 or c.zh:
            continue
        head = c.surface.rsplit(" ", 1)
        if len(head) == 2 and head[1] in heads:
            core = " ".join(tok(head[0]))
            if core and core != key:  # "tamed euler scheme", "tamed euler method": one term
                same[key] = core
    return same


def _zh_fragments(cands: Mapping[str, Any], key_stats: Any, share: float) -> set[str]:
    """Keys of Chinese phrases (two or more words) that are fragments of a longer candidate
    of the same text: "大语言" inside "大语言模型", "位移雅" and "可比度量" inside
    "位移雅可比度量". A fragment never occurs in the text outside the longer phrase (its
    count is no higher) and, in the corpus, mostly occurs as part of it (the longer
    phrase's df is at least ``share`` of its own), so the whole phrase speaks for it.
    Compared by surface (jieba may segment a phrase differently alone and in context)."""
    by_surface = {c.surface: key for key, c in cands.items() if c.zh and c.words >= 2}
    out: set[str] = set()
    if len(by_surface) < 2:
        return out
    for key, c in cands.items():
        if not c.zh or c.words < 3:
            continue
        whole = c.surface
        df_whole = -1.0
        n = len(whole)
        for i in range(n):
            for j in range(i + 2, n + 1 - (i == 0)):  # proper substrings of two characters or more
                sub = by_surface.get(whole[i:j])
                if sub is None or sub in out or cands[sub].count > c.count:
                    continue
                if df_whole < 0:
                    df_whole = key_stats(key)[0]
                if df_whole >= share * key_stats(sub)[0]:
                    out.add(sub)
    return out


def _nested(a: str, b: str) -> bool:
    """One phrase key inside the other, on term boundaries ("neural network" / "graph neural network")."""
    if len(a) > len(b):
        a, b = b, a
    return f" {a} " in f" {b} "


def _select(scored: list[tuple[float, str]], k: int, penalty_zh: float, penalty_en: float,
            same_term: Mapping[str, str] | None = None) -> list[tuple[float, str]]:
    """Top k by score, where a phrase nested in (or containing) one already chosen has its
    score multiplied by the penalty once: "对话轨迹", "对话轨迹预测", "轨迹预测" should not
    fill three of ten slots; of the phrases ``same_term`` maps to one (merge_variants),
    only the first is chosen. Returns (score, key) in descending order."""
    heap = [(-score, key, False) for score, key in scored]
    heapq.heapify(heap)
    chosen: list[tuple[float, str]] = []
    terms_chosen: set[str] = set()
    same_term = same_term or {}
    while heap and len(chosen) < k:
        neg, key, penalised = heapq.heappop(heap)
        term = key
        while term in same_term:  # "pinch technique algorithm" → "pinch technique" → "pinch"
            term = same_term[term]
        if term in terms_chosen:
            continue
        if not penalised:
            penalty = penalty_zh if has_cjk(key) else penalty_en
            if penalty < 1.0 and any(_nested(key, other) for _, other in chosen):
                heapq.heappush(heap, (neg * penalty, key, True))
                continue
        chosen.append((-neg, key))
        terms_chosen.add(term)
    return chosen


def extract_keywords(text: str, k: int = 10, title: str = "", doc_freqs: DocFreqs | None = None) -> list[Keyword]:
    """Convenience: one-off extraction with the shipped statistics by default."""
    return KeywordExtractor(doc_freqs).extract(text, k=k, title=title)


def interest_key(keyword: str) -> str:
    """The key under which a reader's interest profile adds up ``keyword`` across papers:
    its tokenizer terms (so singular and plural agree), an acronym replaced by the long
    form the arXiv corpus gives it ("GNNs" → the terms of "graph neural networks"), and a
    trailing generic head noun dropped ("graph neural network models")."""
    tok = default_tokenizer().tokenize
    text = keyword.strip()
    if " " not in text:
        acronym = acronym_key(text)
        long_form = expansion(acronym) if acronym else None
        if long_form:
            text = long_form
    words = text.split()
    if len(words) > 2 and words[-1].lower() in _GENERIC_HEADS:
        text = " ".join(words[:-1])
    return " ".join(tok(text)) or keyword.strip().lower()


def interest_profile(keywords: Iterable[Keyword | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A paper's keywords as its reader's interest profile records them (the paper page's
    ``data-keywords``): ``{"keyword", "weight", "key"}``, weights relative to the best,
    one entry per :func:`interest_key` (the stronger kept), an acronym named by its long
    form so that the word cloud shows one term under one name."""
    items = [(k.keyword, float(k.weight)) if isinstance(k, Keyword) else (str(k["keyword"]), float(k["weight"]))
             for k in keywords]
    best = max((w for _, w in items), default=1.0) or 1.0
    out: dict[str, dict[str, Any]] = {}
    for word, weight in items:
        key = interest_key(word)
        if key in out:
            continue
        label = word
        if " " not in word and acronym_key(word):
            label = expansion(word) or word
        out[key] = {"keyword": label, "weight": round(weight / best, 4), "key": key}
    return list(out.values())
