"""Keyphrase candidates: noun-phrase-like word sequences, without a POS tagger.

Why this way: keyphrases are overwhelmingly noun phrases ("graph neural networks",
"sign problem", "平方和优化"). English has no tagger installed, but a phrase boundary
is almost always punctuation, a function word, a verb or an adverb, and those are
a closed-ish list plus a few suffix rules, so a split on them finds the noun phrases of
scientific prose well enough (measured: docs/quality.md). Chinese gets
jieba.posseg flags through :mod:`indexer.text.tokenizer` (the only module that calls jieba).

A *chunk* is a maximal run of content words. Candidates are the chunk itself (trimmed to
its noun-like ends) and, for long chunks, its sub-phrases; each candidate is keyed by its
tokenizer terms joined with a space, the same key :class:`indexer.text.keywords.DocFreqs`
counts, so "Neural Networks" and "neural network" are one candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from indexer.text.tokenizer import CHINESE_STOP_WORDS, default_tokenizer, has_cjk, pos_cut_chinese
from indexer.text.wordlists import COMPARATIVE, GERUND, VERB, verb_forms

MAX_WORD_CHARS = 40  # longer "words" are URLs, formulas or junk, never keyword material
MAX_WORDS = 5  # longest candidate kept whole; longer chunks contribute sub-phrases only

# Function words, verbs, and generic words of scientific prose that end a noun phrase.
_BREAK_WORDS = frozenset(
    """a about above according across actually after afterwards again against ago all almost alone
    along already also although always am among amongst an and another any anyhow anyone anything
    anyway anywhere are aren't around as aside at away back be became because become becomes
    becoming been before beforehand behind being below beside besides between beyond both but by
    can cannot could couldn't did didn't do does doesn't doing don't done down due during each
    eg either else elsewhere enough especially et etc even ever every everyone everything
    everywhere except far few first for former formerly from further furthermore had hadn't has
    hasn't have haven't having he hence her here hereafter hereby herein hers herself him himself
    his how however i ie if in indeed instead into is isn't it it's its itself just last latter
    latterly least less let like likely made mainly make makes many may me meanwhile might more
    moreover most mostly much must my myself namely neither never nevertheless next no nobody none
    nor not nothing now nowhere of off often on once one only onto or other others otherwise our
    ours ourselves out over overall own per perhaps please quite rather really regarding
    respectively same second several she should shouldn't since so some somehow someone something
    sometimes somewhat somewhere still such than that that's the their theirs them themselves then
    thence there thereafter thereby therefore therein thereof thereupon these they third this
    those though three through throughout thru thus to together too toward towards two under
    unless until up upon us used using very via was wasn't we well were weren't what whatever when
    whence whenever where whereas whereby wherein whether which while whither who whoever whole
    whom whose why will with within without would wouldn't yet you your yours yourself
    yourselves i.e e.g vs versus al non can't won't we're it's let's

    achieve achieved achieves achieving address addressed addresses addressing aim aims allow
    allowed allows allowing apply applied applies applying argue argued assume assumed based
    become becomes call called can compare compared compares comparing consider considered
    considering considers contain contains containing demonstrate demonstrated demonstrates
    demonstrating describe described describes describing derive derived derives  designed
     determine determined develop developed develops developing discuss discussed discusses
    employ employed employs enable enabled enables enabling evaluate evaluated evaluates
    evaluating exhibit exhibits exhibited explore explored explores exploring find finds found
    focus focuses focused gain gained get gets getting give given gives giving help helps
    identify identified identifies improve improved improves improving include included includes
    including incorporate incorporates incorporated indicate indicated indicates introduce
    introduced introduces introducing investigate investigated investigates investigating lead
    leads leading led leverage leverages leveraging make makes making need needs needed observe
    observed observes obtain obtained obtains obtaining offer offers offered outperform
    outperformed outperforms outperforming perform performed performs present presented presents
    presenting propose proposed proposes proposing prove proved proves proven provide provided
    provides providing reach reached reaches reduce reduced reduces reducing reveal revealed
    reveals remain remains require required requires requiring result resulted results resulting
    achieve see seen seem seems shown show showed showing shows solve solved solves study studied
    studies suggest suggested suggests take taken takes taking tend tends use used uses utilize
    utilized utilizes yield yields yielded adopt adopted adopts apply report reported reports
    establish established establishes extend extended extends consist consists consisting
    represent represents represented depend depends depending relies rely relying
    achieves attain attains enhance enhances enhanced enhancing exploit exploits exploited
    exploiting capture captures captured capturing produce produces produced producing
    remains serve serves served want wants wanted known unknown usually typically generally
    often recently previously currently significantly substantially successfully effectively
    efficiently simultaneously respectively finally first firstly secondly thirdly lastly
    new novel proposed existing various different several many numerous certain particular
    specific possible important significant key main major simple effective efficient
    good better best robust accurate generic common
    typical conventional traditional  recent previous prior related similar
    corresponding respective appropriate suitable relevant useful able unable available
    capable difficult easy challenging promising interesting competitive comprehensive
    extensive further additional overall entire whole
    paper article way ways kind kinds lot lots example examples terms fact  addition
    respect  aspect aspects variety extent etc state-of-the-art off-the-shelf well-known so-called
    fig figs eq eqs ref refs sec cf""".split()
)


def _load_verbs() -> frozenset[str]:
    """Verb-like words learned from the arXiv corpus (benchmarks/make_keyword_stats.py):
    words usually followed by a determiner ("improves the") or preceded by "we"/"to"/a
    modal, and rarely by an article. They end noun phrases like the hand list above."""
    ref = resources.files("indexer") / "data" / VERBS_FILE
    if not ref.is_file():
        return frozenset()
    return frozenset(w for w in ref.read_text(encoding="utf-8").split() if w)


VERBS_FILE = "keyword-verbs.txt"
_VERBS = _load_verbs()
# Verb forms of the lexicon (indexer.text.wordlists): base and -s forms end a phrase like the
# learned verbs ("graph neural networks operate"), -ing forms may not start one,
# comparatives may not end one.
_VERB_FORMS = verb_forms()


def use_verbs(words: Iterable[str]) -> None:
    """Replace the learned verb list (benchmarks/make_keyword_stats.py, while rebuilding it)."""
    global _VERBS
    _VERBS = frozenset(words)
    _WORD_INFO.clear()  # cached word classes depend on the verb list


# "-ly" words that are not adverbs (the -ly rule would end a phrase at them).
_ADVERB_EXCEPTIONS = frozenset(
    "family anomaly assembly supply poly italy monopoly butterfly reply ply fly july only early "
    "holy ally belly bully jelly rally tally multiply apply rely comply imply".split()
)

_SPLIT_RE = re.compile(r"[^\W_](?:[\w'’.\-]*[^\W_])?|[^\w\s]+|_+")
_MATH_RE = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[a-zA-Z]+\*?")
_SENTENCE_RE = re.compile(r"[^。！？；\n.!?;]+[。！？；\n.!?;]*")


@dataclass
class Candidate:
    """One candidate phrase of one document (all occurrences merged by ``key``)."""

    key: str  # tokenizer terms joined by " "
    surface: str  # display form (first occurrence)
    terms: tuple[str, ...]
    words: int  # number of surface words (English) or jieba words (Chinese)
    count: int = 0
    first: int = 0  # word offset of the first occurrence
    in_title: bool = False
    zh: bool = False  # a Chinese (jieba.posseg) candidate


def _is_break(lower: str) -> bool:
    if lower in _BREAK_WORDS or lower in _VERBS or _VERB_FORMS.get(lower) == VERB:
        return True
    if lower[0].isdigit() and not any(c.isalpha() for c in lower):
        return True  # plain numbers
    if len(lower) == 1 or len(lower) > MAX_WORD_CHARS:
        return True
    if lower.endswith("ly") and len(lower) > 4 and lower not in _ADVERB_EXCEPTIONS:
        return True
    return False


def _bad_end(lower: str) -> bool:
    """Words that may sit inside a noun phrase but not at its end (participles, comparatives)."""
    return (lower.endswith("ed") and len(lower) > 4 and not lower.endswith("eed")) or _VERB_FORMS.get(lower) == COMPARATIVE


def _bad_start(lower: str) -> bool:
    """Words that may sit inside a noun phrase but not at its start: verbs in -ing
    ("extracting interpretable features"; "quantum computing" keeps its noun)."""
    return _VERB_FORMS.get(lower) == GERUND


def _display_word(w: str) -> str:
    """Lower-case unless the word is an acronym or has inner capitals (BERT, ImageNet, GPT-4)."""
    if any(c.isupper() for c in w[1:]):
        return w
    return w.lower()


def english_chunks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(word_offset, words)`` for each maximal run of content words."""
    text = _MATH_RE.sub(" , ", text)
    offset = 0
    chunk: list[str] = []
    start = 0
    for m in _SPLIT_RE.finditer(text):
        tok = m.group()
        if not (tok[0].isalnum()):
            if chunk:
                yield start, chunk
                chunk = []
            continue
        if tok[-1] == "." or "." in tok:
            tok = tok.rstrip(".")
            if "." in tok:  # "e.g", "3.5", "fig.2" and the like: not phrase material
                if chunk:
                    yield start, chunk
                    chunk = []
                offset += 1
                continue
        lower = tok.lower()
        possessive = lower.endswith(("'s", "’s"))
        if possessive:  # "MRAG's potential": the possessor ends its own phrase
            lower = lower[:-2]
            tok = tok[:-2]
        if not lower or _is_break(lower):
            if chunk:
                yield start, chunk
                chunk = []
        else:
            if not chunk:
                start = offset
            chunk.append(tok)
            if possessive:
                yield start, chunk
                chunk = []
        offset += 1
    if chunk:
        yield start, chunk


def _trim_span(words: list[str]) -> tuple[int, list[str]]:
    """``(words dropped at the start, the rest)``: no participle or comparative at the
    end, no -ing verb at the start."""
    while words and _bad_end(words[-1].lower()):
        words = words[:-1]
    lead = 0
    while lead < len(words) and _bad_start(words[lead].lower()):
        lead += 1
    return lead, words[lead:]


def english_phrases(words: list[str], max_words: int = MAX_WORDS) -> Iterator[tuple[int, list[str]]]:
    """Candidate phrases of one chunk: ``(index_in_chunk, words)``.

    The trimmed chunk when short; otherwise every sub-phrase of 1..max_words-1 words that
    ends on a noun-like word (long runs are usually several noun phrases glued together).
    """
    lead, words = _trim_span(words)
    if not words:
        return
    n = len(words)
    if n <= max_words:
        yield lead, words
        return
    for i in range(n):
        if _bad_start(words[i].lower()):
            continue
        for j in range(i + 1, min(n, i + max_words - 1) + 1):
            if not _bad_end(words[j - 1].lower()):
                yield lead + i, words[i:j]


# Chinese: jieba.posseg flags that make noun phrases.
_ZH_HEAD = frozenset("n nr ns nt nz nl ng vn an eng j l nrt nrfg b".split())
_ZH_VERB_HEAD = frozenset("v".split())
_ZH_NO_START = frozenset("vd ad d".split())
_ZH_MOD = frozenset("a ad ag v vd".split()) | _ZH_HEAD
_ZH_STOP = frozenset(
    """研究 方法 结果 问题 分析 影响 作用 应用 情况 方面 过程 目的 意义 基础 条件 因素 特点 方式
    作者 本文 文章 论文 我国 国内 国外 目前 现状 发展 工作 提出 采用 进行 利用 通过 基于 实现 表明
    具有 存在 建立 得到 获得 提高 设计 讨论 探讨 介绍 需要 可以 能够 一定 重要 主要 相关 不同 有效
    时间 部分 内容 水平 效果 技术 系统 模型 数据 理论 观察 治疗 对照组 患者 实验
    提升 增强 减少 降低 改善 解决 克服 结合 整合 引入 构建 提供 展示 揭示 证明 发现 评估 显示
    取得 达到 保持 推动 促进 支持 允许 包括 涉及 面临 考虑 采取 开发 确定 定义 描述 比较 验证
    优于 超越 使得 使用 处理 生成 学习 训练 捕捉 捕获 实现了 进行了 提出了 用于 应用于""".split()
)
# Generic nouns that are no keyword alone but end many compound terms: a phrase of two or
# more words may end on them ("大语言模型", "推荐系统", "深度学习", "聚类分析"); without
# them "大语言模型" could only come out as the fragment "大语言".
_ZH_GENERIC_HEADS = frozenset(
    """模型 数据 系统 技术 理论 学习 训练 生成 处理 分析 方法 实验 治疗 患者 效果 过程 问题 作用
    机制 水平 条件 因素 结构 应用""".split()
)
# Words that never join a phrase: the tokenizer's stop words ("是", "对", "了", ...), so
# "是思维链监督" is not a candidate beside "思维链监督".
_ZH_BREAK = (CHINESE_STOP_WORDS - _ZH_GENERIC_HEADS) | frozenset(
    """来 到 可 去 给 让 使 令 会 能 要 需 了 名为 称为 旨在 帮助 导致 表明 结果表明 显示 至关重要 尤为重要
    表现出色 集上""".split()
)
# A verb followed by an adjective or a distinguishing word governs an object, it does not
# modify a noun: "审视大语言模型", "微调小型开源模型" are clauses, "推理能力" is a term.
_ZH_OBJECT_START = frozenset("a b ad ag".split())
_ZH_PREFIXES = frozenset("多 单 双 全 半".split())
_ZH_FUNCTION_CHARS = frozenset("了是的和与及或把而")  # no term starts with one
# Heads that complete the noun before them: no phrase stops just before one.
_ZH_TIGHT_HEADS = ("模型",)  # also as the start of a word jieba's HMM made ("模型模拟")


def chinese_chunks(text: str) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """Maximal runs of noun-phrase material from jieba.posseg: ``(word_offset, [(word, flag)])``."""
    chunk: list[tuple[str, str]] = []
    start = 0
    for offset, (word, flag) in enumerate(pos_cut_chinese(text)):
        if word in _ZH_PREFIXES and flag == "m":
            flag = "a"  # "多" of "多模态", "多尺度": a modifier, not a number
        breaks = word in _ZH_BREAK or (flag == "eng" and len(word) == 1)  # "是", the "D" of "3D部件"
        if not breaks and (flag in _ZH_MOD and word not in _ZH_STOP or (flag in _ZH_HEAD and chunk)):
            if not chunk:
                start = offset
            chunk.append((word, flag))
        else:
            if chunk:
                yield start, chunk
                chunk = []
    if chunk:
        yield start, chunk


def chinese_phrases(chunk: list[tuple[str, str]], max_words: int = 5) -> Iterator[tuple[int, list[str]]]:
    """Sub-phrases of a Chinese chunk: they end on a noun-like word (or on a verb after a
    noun: 质量控制, 经济增长), and do not start with a bare verb or adverb or with a verb
    that governs an object ("审视大语言模型")."""
    n = len(chunk)
    for i in range(n):
        if chunk[i][1] in _ZH_NO_START:
            continue
        if chunk[i][1] == "v" and i + 1 < n and chunk[i + 1][1] in _ZH_OBJECT_START:
            continue
        if chunk[i][0] in CHINESE_STOP_WORDS or chunk[i][0][0] in _ZH_FUNCTION_CHARS:
            continue  # "方法信号"; "了非局部", "和域" (words jieba's HMM made across 了, 和)
        for j in range(i + 1, min(n, i + max_words) + 1):
            word, flag = chunk[j - 1]
            if j < n and chunk[j][0].startswith(_ZH_TIGHT_HEADS):
                continue  # "大语言" of "大语言模型": the head completes the term
            if word in _ZH_STOP and (j - i == 1 or word not in _ZH_GENERIC_HEADS):
                continue
            if flag not in _ZH_HEAD and not (flag in _ZH_VERB_HEAD and j - i > 1):
                continue
            if j - i == 1 and len(word) < 2:
                continue
            yield i, [w for w, _ in chunk[i:j]]


def _join_zh(words: list[str]) -> str:
    out = words[0]
    for w in words[1:]:
        if out[-1].isascii() and out[-1].isalnum() and w[0].isascii() and w[0].isalnum():
            out += " " + w
        else:
            out += w
    return out


def iter_phrases(text: str, all_subphrases: bool = False) -> Iterator[tuple[int, str, int]]:
    """``(word_offset, surface, n_words)`` for every candidate occurrence in ``text``.

    English sentences go through the stop-word chunker, sentences with CJK characters
    through jieba.posseg. ``all_subphrases`` also yields every sub-phrase of every chunk
    (used when counting document frequencies, so that "neural network" inside "graph
    neural network" is counted too).
    """
    base = 0
    for sm in _SENTENCE_RE.finditer(text):
        sentence = sm.group()
        if has_cjk(sentence):
            n_words = 0
            for start, chunk in chinese_chunks(sentence):
                n_words = max(n_words, start + len(chunk))
                for i, words in chinese_phrases(chunk):
                    yield base + start + i, _join_zh(words), len(words)
            base += n_words + 1
        else:
            n_words = 0
            for start, en_chunk in english_chunks(sentence):
                n_words = max(n_words, start + len(en_chunk))
                if all_subphrases:
                    lead, trimmed = _trim_span(en_chunk)
                    n = len(trimmed)
                    for i in range(n):
                        for j in range(i + 1, min(n, i + MAX_WORDS) + 1):
                            yield base + start + lead + i, " ".join(map(_display_word, trimmed[i:j])), j - i
                else:
                    for i, en_words in english_phrases(en_chunk):
                        yield base + start + i, " ".join(map(_display_word, en_words)), len(en_words)
            base += n_words + 1


def phrase_terms(surface: str) -> tuple[str, ...]:
    return tuple(default_tokenizer().tokenize(surface))


# -- the fast path of collect_candidates ------------------------------------------------
# Same output as iter_phrases + tokenising each surface, but every surface token is
# classified once per process (break word, number, possessive, display form, its
# tokenizer terms, participle end) and remembered: scientific prose repeats its words, so
# the per-occurrence work is a dict lookup. A phrase's terms are the concatenation of its
# words' terms (the tokenizer never matches across the spaces that join the words).

# token kinds: punctuation (ends a chunk, takes no word offset), break word or dotted token
# (ends a chunk), content word, possessive (ends the chunk it closes)
_PUNCT, _BREAK, _WORD, _POSS = ".", "b", "w", "p"
_WORD_INFO: dict[str, tuple] = {}
_WORD_INFO_LIMIT = 1_000_000  # words; a service lowers it (indexer.search.caches)


def set_word_info_limit(n: int) -> None:
    """How many words' classes are remembered before the cache starts over."""
    global _WORD_INFO_LIMIT
    _WORD_INFO_LIMIT = max(1, int(n))


def _word_info(tok: str) -> tuple:
    """``(kind, display, terms, bad_end, bad_start)`` of one _SPLIT_RE token (see english_chunks)."""
    if not tok[0].isalnum():
        return (_PUNCT, "", (), False, False)
    if tok[-1] == "." or "." in tok:
        tok = tok.rstrip(".")
        if "." in tok:
            return (_BREAK, "", (), False, False)
    lower = tok.lower()
    possessive = lower.endswith(("'s", "’s"))
    if possessive:
        lower = lower[:-2]
        tok = tok[:-2]
    if not lower or _is_break(lower):
        return (_BREAK, "", (), False, False)
    display = _display_word(tok)
    terms = tuple(default_tokenizer().tokenize(display))
    return (_POSS if possessive else _WORD, display, terms, _bad_end(lower), _bad_start(lower))


def _english_sentence_candidates(sentence: str, base: int, out: list) -> int:
    """Append ``(offset, surface, n_words, terms, False)`` of one English sentence to ``out``
    (the candidates iter_phrases yields, in its order); returns the sentence's word count
    as iter_phrases advances its offset (end of the last chunk)."""
    return _chunk_candidates(_sentence_chunks(sentence), base, out)


def _sentence_chunks(sentence: str) -> list[tuple[int, list[tuple]]]:
    """``(word offset, word infos)`` of the runs of content words of one English sentence,
    cut at punctuation, break words, dotted tokens and after a possessive."""
    info_of = _WORD_INFO
    if len(info_of) > _WORD_INFO_LIMIT:
        info_of.clear()
    get = info_of.get
    sentence = _MATH_RE.sub(" , ", sentence)
    chunk: list[tuple] = []
    chunks: list[tuple[int, list[tuple]]] = []
    offset = start = 0
    for tok in _SPLIT_RE.findall(sentence):
        info = get(tok)
        if info is None:
            info = info_of[tok] = _word_info(tok)
        kind = info[0]
        if kind == "w":  # content word
            if not chunk:
                start = offset
            chunk.append(info)
        elif kind == ".":  # punctuation: ends a chunk, takes no word offset
            if chunk:
                chunks.append((start, chunk))
                chunk = []
            continue
        elif kind == "p":  # "MRAG's potential": the possessor ends its own phrase
            if not chunk:
                start = offset
            chunk.append(info)
            chunks.append((start, chunk))
            chunk = []
        elif chunk:  # break word or dotted token
            chunks.append((start, chunk))
            chunk = []
        offset += 1
    if chunk:
        chunks.append((start, chunk))
    return chunks


def _chunk_candidates(chunks: list[tuple[int, list[tuple]]], base: int, out: list) -> int:
    """Append the candidates of a sentence's ``chunks`` to ``out`` (see
    :func:`_english_sentence_candidates`); returns the end of the last chunk."""
    n_words = 0
    max_words = MAX_WORDS
    for start, words in chunks:
        end = start + len(words)
        if end > n_words:
            n_words = end
        while words and words[-1][3]:  # _trim: no participle at the end
            words = words[:-1]
        lead = 0
        while lead < len(words) and words[lead][4]:  # ... and no -ing verb at the start
            lead += 1
        if lead:
            words = words[lead:]
            start += lead
        n = len(words)
        if not n:
            continue
        pos = base + start
        if n <= max_words:
            if n == 1:
                w = words[0]
                out.append((pos, w[1], 1, w[2], False))
            else:
                terms: tuple = ()
                for w in words:
                    terms += w[2]
                out.append((pos, " ".join([w[1] for w in words]), n, terms, False))
            continue
        for i in range(n):
            if words[i][4]:
                continue
            terms = ()
            for j in range(i, min(n, i + max_words - 1)):
                w = words[j]
                terms += w[2]
                if not w[3]:
                    out.append((pos + i, " ".join([x[1] for x in words[i : j + 1]]), j + 1 - i, terms, False))
    return n_words


def _candidate_occurrences(text: str) -> list[tuple[int, str, int, tuple[str, ...], bool]]:
    """``(word_offset, surface, n_words, terms, is_cjk)`` for every candidate occurrence of
    ``text``: iter_phrases(text) with each surface's tokenizer terms."""
    out: list[tuple[int, str, int, tuple[str, ...], bool]] = []
    base = 0
    cjk = has_cjk(text)
    for sentence in _SENTENCE_RE.findall(text):
        if cjk and has_cjk(sentence):
            n_words = 0
            for start, chunk in chinese_chunks(sentence):
                n_words = max(n_words, start + len(chunk))
                for i, words in chinese_phrases(chunk):
                    surface = _join_zh(words)
                    out.append((base + start + i, surface, len(words), tuple(default_tokenizer().tokenize(surface)), has_cjk(surface)))
            base += n_words + 1
        else:
            base += _english_sentence_candidates(sentence, base, out) + 1
    return out


def collect_candidates(text: str, title: str = "") -> tuple[dict[str, Candidate], int]:
    """All candidates of a document merged by key (title occurrences first), and the
    document's length in words (up to its last candidate)."""
    cands: dict[str, Candidate] = {}
    offset = 0
    for part, is_title in ((title, True), (text, False)):
        if not part:
            continue
        last = 0
        for pos, surface, n, terms, zh in _candidate_occurrences(part):
            if not terms:
                continue
            key = terms[0] if len(terms) == 1 else " ".join(terms)
            c = cands.get(key)
            if c is None:
                c = cands[key] = Candidate(key, surface, terms, n, first=offset + pos, zh=zh)
            c.count += 1
            if is_title:
                c.in_title = True
            last = pos
        offset += last + 1
    return cands, offset


def document_keys(text: str) -> set[str]:
    """Every term and every sub-phrase key of ``text`` (what a document-frequency count sees)."""
    tok = default_tokenizer().tokenize
    keys = set(tok(text))
    for _, surface, n in iter_phrases(text, all_subphrases=True):
        if n > 1:
            terms = tok(surface)
            if len(terms) > 1:
                keys.add(" ".join(terms))
    return keys
