"""Text → index terms. The only module in the code base that calls jieba.

Why this shape:
- Latin text takes a fast path: NFKC (only when the text is not ASCII), case folding,
  one ``re.findall``, and a per-word cache that maps each surface word straight to its
  output (stemmed token, compound parts, or nothing for a stop word). Most words repeat,
  so after warm-up a word costs one dict lookup.
- Runs of CJK characters go through jieba (search-engine mode off, HMM on; the Rust port
  ``rjieba`` when installed, same output at ~12x the speed), so mixed text
  such as ``基于Transformer的目标检测`` becomes ``transform 目标 检测`` (``基于`` and ``的``
  are stop words) and English keeps its speed.
- Hyphenated and alphanumeric compounds (``gpt-4``, ``u-net``, ``3d``) are findable joined
  and split: ``u-net`` → ``u``-less parts ``net`` plus the joined ``unet``.
- LaTeX commands (``\\emph``, ``\\alpha``) are dropped; their arguments are kept.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable

import Stemmer

# CJK unified ideographs (+ext A, compatibility), kana and hangul count as "CJK runs".
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_WORD_RE = re.compile(rf"[a-z0-9]+(?:[-'’][a-z0-9]+)*|[{_CJK}]+")
_CJK_RE = re.compile(rf"[{_CJK}]")
_LATEX_CMD_RE = re.compile(r"\\[a-zA-Z]+")

ENGLISH_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can cannot could couldn't did didn't do does doesn't
    doing don't down during each either et etc few for from further had hadn't has hasn't have
    haven't having he her here hers herself him himself his how however i if in into is isn't it
    it's its itself just let's may me might more most much must mustn't my myself neither no nor
    not of off on once only or other ought our ours ourselves out over own per same shall she
    should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they this those through thus to too under until up upon us very via was wasn't
    we were weren't what when where whether which while who whom whose why will with within
    without won't would wouldn't yet you your yours yourself yourselves al i.e e.g""".split()
)

CHINESE_STOP_WORDS = frozenset(
    """的 了 和 与 及 或 是 在 对 为 以 于 将 把 被 由 从 中 上 下 并 而 且 也 都 就 这 那 其 之 该 等
    个 一 一个 一种 我们 本文 本 文 通过 进行 提出 基于 使用 利用 可以 能够 研究 方法 结果 表明 论文
    实现 具有 以及 不同 一些 这些 这种 此 各 所 如 如何 如果 因为 所以 但 但是 然而 同时 其中 之间
    此外 以下 以上 已 已经 还 更 最 很 非常 主要 进一步 分别 及其 作为 得到 给出 针对 相关 问题""".split()
)

# Bump whenever a change alters tokenize() output (stop list, stemmer, compounds): indexes
# built with another version are reported stale (BM25Index.stale) and need a full rebuild.
TOKENIZER_VERSION = 1

_jieba_lock = threading.Lock()
_jieba = None


def _jieba_module():
    """Import and initialise jieba once (its dictionary load takes about a second)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def _rust_cut():
    """rjieba (jieba-rs: same dictionary and algorithm, about 12x faster; identical output on
    25,699 CJK runs of the shared Chinese summaries) when installed, else None."""
    global _rjieba
    if _rjieba is None:
        try:
            import rjieba

            _rjieba = rjieba.cut
        except ImportError:  # pure-Python jieba is the fallback
            _rjieba = False
    return _rjieba or None


_rjieba = None


def cut_chinese(text: str) -> list[str]:
    """Segment a CJK run with jieba (accurate mode, HMM for unknown words)."""
    cut = _rust_cut()
    words = cut(text, True) if cut is not None else _jieba_module().lcut(text, HMM=True)
    return [w for w in words if w.strip()]


def pos_cut_chinese(text: str) -> list[tuple[str, str]]:
    """Segment with part-of-speech flags (for keyphrase candidates); jieba.posseg."""
    _jieba_module()
    import jieba.posseg as pseg

    return [(p.word, p.flag) for p in pseg.lcut(text) if p.word.strip()]


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None


def normalize(text: str) -> str:
    """NFKC (only when needed), drop LaTeX commands, case-fold."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if "\\" in text:
        text = _LATEX_CMD_RE.sub(" ", text)
    return text.casefold()


class Tokenizer:
    """Turns text into BM25 terms. Stateless apart from its caches; safe to share.

    ``stem=False`` / ``stopwords=False`` give the plain variants used as baselines.
    """

    _CACHE_LIMIT = 2_000_000

    def __init__(self, stem: bool = True, stopwords: bool = True, split_compounds: bool = True):
        self.stem = stem
        self.stopwords = stopwords
        self.split_compounds = split_compounds
        self._stemmer = Stemmer.Stemmer("english") if stem else None
        # surface word (or CJK run) -> space-joined output terms ("" for a stop word)
        self._cache: dict[str, str] = {}
        self.cache_limit = self._CACHE_LIMIT  # words remembered; a service lowers it (indexer.search.caches)

    # -- public -------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """Terms of ``text`` in order (duplicates kept: BM25 needs term frequencies)."""
        if not text:
            return []
        words = _WORD_RE.findall(normalize(text))
        cache = self._cache
        if len(cache) > self.cache_limit:
            cache.clear()
        miss = self._miss
        get = cache.get  # .get, not "in" + [], so a concurrent clear() cannot raise KeyError
        return " ".join([c if (c := get(w)) is not None else miss(w) for w in words]).split()

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]

    def stem_word(self, word: str) -> str:
        """Stem one already-lowercased Latin word (identity when stemming is off)."""
        return self._stemmer.stemWord(word) if self._stemmer else word

    def is_stopword(self, word: str) -> bool:
        return word in ENGLISH_STOP_WORDS or word in CHINESE_STOP_WORDS

    # -- internals -----------------------------------------------------------------
    def _miss(self, w: str) -> str:
        out = self._compute(w)
        self._cache[w] = out
        return out

    def _compute(self, w: str) -> str:
        """The space-joined terms of one word or CJK run (run once per distinct word: cached)."""
        if _CJK_RE.match(w):
            return self._chinese(w)
        if self.stopwords and w in ENGLISH_STOP_WORDS:
            return ""
        w = w.replace("’", "'")
        if "'" in w:  # possessives and contractions: "model's" -> "model"
            w = w.split("'", 1)[0]
            if not w or (self.stopwords and w in ENGLISH_STOP_WORDS):
                return ""
        if "-" in w:
            return self._hyphenated(w)
        return self._one(w)

    def _chinese(self, run: str) -> str:
        """A CJK run cut into words by jieba, stop words dropped."""
        toks = cut_chinese(run)
        if self.stopwords:
            toks = [t for t in toks if t not in CHINESE_STOP_WORDS]
        return " ".join(toks)

    def _hyphenated(self, w: str) -> str:
        """A hyphenated word ("graph-based"): its parts (stop words and single letters
        dropped) and, with ``split_compounds``, the joined word after them; else the joined
        word alone."""
        parts = [p for p in w.split("-") if p]
        joined = "".join(parts)
        out = [self._one(p) for p in parts if len(p) > 1 and not (self.stopwords and p in ENGLISH_STOP_WORDS)]
        if self.split_compounds:
            out.append(self._one(joined))
            return " ".join(t for t in out if t)
        return self._one(joined)

    def _one(self, w: str) -> str:
        if len(w) == 1 and not w.isdigit():
            return ""
        if self._stemmer and w.isalpha():
            return self._stemmer.stemWord(w)
        return w


_default: Tokenizer | None = None


def default_tokenizer() -> Tokenizer:
    """The shared tokenizer used by index, queries and keywords (one cache per process)."""
    global _default
    if _default is None:
        _default = Tokenizer()
    return _default


def tokenize(text: str) -> list[str]:
    return default_tokenizer().tokenize(text)


def analyse_extract_tags(text: str, k: int = 10) -> list[str]:
    """jieba.analyse.extract_tags (jieba's own TF-IDF keywords): the Chinese keyphrase
    baseline of ``papers eval keyphrases`` lives here because only this module imports jieba."""
    _jieba_module()
    import jieba.analyse

    return list(jieba.analyse.extract_tags(text, topK=k))


def author_terms(name: str) -> list[str]:
    """Terms of an author name for ``au:`` search: accents folded (``Müller`` → ``muller``),
    case-folded, split on anything that is not a letter or digit; initials kept; no stemming
    and no stop words (names are not prose)."""
    if not name:
        return []
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return [t for t in _AUTHOR_SPLIT_RE.split(text) if t]


_AUTHOR_SPLIT_RE = re.compile(r"[\W_]+")


def author_key(name: str) -> str:
    """One author as ``lastname_initial`` (``Yann LeCun``, ``Y. LeCun`` → ``lecun_y``): how
    related papers recognise the same person across the spellings papers use. Names of
    one word stay as they are; "" for a name without letters."""
    terms = author_terms(name)
    if not terms:
        return ""
    if len(terms) == 1:
        return terms[0]
    return f"{terms[-1]}_{terms[0][0]}"
