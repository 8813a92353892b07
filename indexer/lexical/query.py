"""The search box's query language, parsed into a small tree that BM25 and the dense
retriever both read.

Semantics (kept simple and close to Cool Papers):
- Free words are *optional*: a paper needs at least one of them and BM25 ranks by how many
  and how rare (Cool Papers ranks by BM25 with all words optional). The title is boosted.
- ``"exact phrase"`` is *required* (phrase query on positions, title or abstract).
- Fields are *required* filters that also score: ``ti:`` title, ``abs:`` abstract,
  ``au:`` author (``au:"Yann LeCun"`` is a phrase inside one author's name), ``cat:`` a
  category or an archive (``cat:cs``), ``id:`` an arXiv id. Values may be quoted.
- ``-x`` excludes (a word, phrase or field); ``a OR b`` makes an alternative group. A group
  of plain words is just optional words; a group containing a phrase or a field is required
  (one of its alternatives must match).
- A whole query that is an arXiv id or an abs/pdf URL sets :attr:`ParsedQuery.arxiv_id`.
- Chinese works because words go through :mod:`indexer.text.tokenizer` (jieba on CJK runs).

Errors are :class:`InvalidQuery` with a message fit for the user: empty query, query too
long, unknown lower-case field (``foo:bar``), field without value, a query that is only
``-``, dangling ``OR``, bad id or category.

Forgiven, because people paste titles: an unbalanced quote (the phrase runs to the end); a
dash that excludes nothing (``Decay - the``, ``B0 --> ll``); a colon after a capitalised or
unknown word (``Analysis: a survey``, ``Models:Hot``, ``Chrono::Ray``); a space after a
field's colon (``au: LeCun`` is ``au:LeCun``; ``CAT: Circular Attention``, whose value is no
category, is plain words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from indexer.errors import InvalidQuery
from indexer.ingest.records import InvalidRecord, normalize_arxiv_id
from indexer.lexical.catexpr import canonical_category
from indexer.text.tokenizer import author_terms, default_tokenizer

MAX_QUERY_CHARS = 1000
FIELDS = ("ti", "au", "abs", "cat", "id")
_FIELD_ALIASES = {"ti": "ti", "au": "au", "abs": "abs", "cat": "cat", "id": "id", "arxiv": "id"}
_PREFIX_RE = re.compile(r"^([A-Za-z]+):(.*)$", re.S)
TEXT = "text"  # the field name of free words and unfielded phrases (title + abstract)


@dataclass(frozen=True)
class Atom:
    """One searchable unit. ``field`` is ``text`` (title+abstract), ``ti``, ``abs``, ``au``,
    ``cat`` or ``id``; ``terms`` are index terms (tokenizer terms, author terms, a canonical
    category or a normalised id). ``phrase`` asks for the terms in order."""

    field: str
    value: str
    terms: tuple[str, ...]
    phrase: bool = False

    @property
    def is_free_word(self) -> bool:
        return self.field == TEXT and not self.phrase

    @property
    def is_prose(self) -> bool:
        """Title/abstract text (what highlighting and dense retrieval can use)."""
        return self.field in (TEXT, "ti", "abs")


@dataclass(frozen=True)
class Clause:
    """Alternatives joined by OR (usually one atom); ``negated`` excludes them all."""

    atoms: tuple[Atom, ...]
    negated: bool = False

    @property
    def required(self) -> bool:
        """Free-word-only clauses are optional (they score); anything else must match."""
        return not self.negated and not all(a.is_free_word for a in self.atoms)


@dataclass(frozen=True)
class ParsedQuery:
    raw: str
    clauses: tuple[Clause, ...] = ()
    arxiv_id: str | None = None
    positive_terms: frozenset[str] = field(default_factory=frozenset)
    text: str = ""

    @property
    def is_empty(self) -> bool:
        """Nothing searchable (e.g. only stop words); an arXiv id query is not empty."""
        return self.arxiv_id is None and not any(a.terms for c in self.clauses for a in c.atoms)

    @property
    def fields_only(self) -> bool:
        """No free words or unfielded phrases: nothing for a dense retriever to embed."""
        return not any(a.field == TEXT and a.terms for c in self.clauses if not c.negated for a in c.atoms)

    @property
    def free_terms(self) -> list[str]:
        """Terms of the optional free words, in query order (duplicates removed)."""
        out: dict[str, None] = {}
        for c in self.clauses:
            if not c.negated and not c.required:
                for a in c.atoms:
                    out.update(dict.fromkeys(a.terms))
        return list(out)

    @property
    def must_not_terms(self) -> list[str]:
        """Title/abstract terms of excluded free words (to drop dense hits that contain them)."""
        out: dict[str, None] = {}
        for c in self.clauses:
            if c.negated:
                for a in c.atoms:
                    if a.field == TEXT and not a.phrase:
                        out.update(dict.fromkeys(a.terms))
        return list(out)


# -- lexer ---------------------------------------------------------------------------
@dataclass
class _Tok:
    kind: str  # "atom" | "or"
    negated: bool = False
    field: str = TEXT
    value: str = ""
    quoted: bool = False
    spaced: str = ""  # "CAT: Attention": the field name typed before a space, if any


def _read_quoted(q: str, i: int) -> tuple[str, int]:
    """``q[i] == '"'``: the phrase up to the closing quote, or to the end (forgiving)."""
    j = q.find('"', i + 1)
    if j < 0:
        return q[i + 1 :], len(q)
    return q[i + 1 : j], j + 1


def _lex(q: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
            continue
        negated = False
        if ch == "-":
            j = i
            while j < n and q[j] == "-":
                j += 1
            if j < n and (q[j].isalnum() or q[j] == '"'):
                negated, i, ch = True, j, q[j]  # -survey, -"phrase", -au:name (also --x)
            else:
                # "Decay - the prospect", "B0 --> l+l'": a dash that excludes nothing
                if not toks and not _has_word(q[j:]):
                    raise InvalidQuery("a lone '-' must be followed by the word or phrase to exclude, e.g. -survey")
                i = j
                continue
        if ch == '"':
            value, i = _read_quoted(q, i)
            toks.append(_Tok("atom", negated, TEXT, value, quoted=True))
            continue
        j = i
        while j < n and not q[j].isspace() and q[j] != '"':
            j += 1
        word = q[i:j]
        i = j
        if word == "OR" and not negated:
            toks.append(_Tok("or"))
            continue
        m = _PREFIX_RE.match(word)
        if m and not _looks_like_url(word):
            name, rest = m.group(1).lower(), m.group(2)
            fld = _FIELD_ALIASES.get(name)
            if fld is None:
                if rest and m.group(1).islower() and not rest.startswith(":"):
                    raise InvalidQuery(f"unknown field '{m.group(1)}:'; fields are ti: au: abs: cat: id:")
                # "Analysis: a survey", "Models:Hot or Cold", "Chrono::Ray" (pasted titles):
                # the colon is punctuation
                toks.append(_Tok("atom", negated, TEXT, word.replace(":", " ")))
                continue
            if rest:
                toks.append(_Tok("atom", negated, fld, rest))
            elif i < n and q[i] == '"':
                value, i = _read_quoted(q, i)
                toks.append(_Tok("atom", negated, fld, value, quoted=True))
            else:
                # "au: LeCun" (a space after the colon): take the next word as the value
                k = i
                while k < n and q[k].isspace():
                    k += 1
                e = k
                while e < n and not q[e].isspace() and q[e] != '"':
                    e += 1
                nxt = q[k:e]
                if not nxt or nxt == "OR" or nxt.startswith("-") or _PREFIX_RE.match(nxt):
                    raise InvalidQuery(f"field '{m.group(1)}:' needs a value, e.g. {fld}:word or {fld}:\"two words\"")
                toks.append(_Tok("atom", negated, fld, nxt, spaced=m.group(1)))
                i = e
            continue
        toks.append(_Tok("atom", negated, TEXT, word))
    return toks


def _has_word(s: str) -> bool:
    return any(ch.isalnum() for ch in s)


def _looks_like_url(word: str) -> bool:
    return word.lower().startswith(("http:", "https:"))


# -- atoms ---------------------------------------------------------------------------
def _atom(tok: _Tok) -> Atom:
    if tok.spaced:
        try:
            return _field_atom(tok)
        except InvalidQuery:
            # "CAT: Circular-Convolutional Attention" (a pasted title), not a field
            return _field_atom(_Tok("atom", tok.negated, TEXT, f"{tok.spaced} {tok.value}"))
    return _field_atom(tok)


def _field_atom(tok: _Tok) -> Atom:
    value = tok.value.strip()
    if tok.field == "id":
        try:
            return Atom("id", value, (normalize_arxiv_id(value),))
        except InvalidRecord:
            raise InvalidQuery(f"id: needs an arXiv id like 2401.01234 or hep-th/9901001, not {value!r}") from None
    if tok.field == "cat":
        return Atom("cat", value, (canonical_category(value),))
    if tok.field == "au":
        terms = tuple(author_terms(value))
        return Atom("au", value, terms, phrase=len(terms) > 1)
    terms = tuple(default_tokenizer().tokenize(value))
    phrase = tok.quoted and len(terms) > 1
    if tok.field != TEXT and not tok.quoted and len(terms) > 1 and "-" not in value:
        # ti:目标检测 (one CJK run, several jieba words): all of them, in order
        phrase = True
    return Atom(tok.field, value, terms, phrase=phrase)


def _whole_query_id(q: str) -> str | None:
    s = q.strip()
    if " " in s or len(s) > 200:
        return None
    try:
        return normalize_arxiv_id(s)
    except InvalidRecord:
        return None


def parse_query(q: str) -> ParsedQuery:
    """Parse a search-box query. Raises :class:`InvalidQuery` for malformed input."""
    if q is None or not q.strip():
        raise InvalidQuery("empty query: type some words, a \"phrase\", or a field such as au:name")
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"query too long ({len(q)} characters; the limit is {MAX_QUERY_CHARS})")
    if "\x00" in q:
        raise InvalidQuery("query contains a NUL character")
    q = q.strip()
    arxiv_id = _whole_query_id(q)
    if arxiv_id:
        return ParsedQuery(raw=q, clauses=(Clause((Atom("id", q, (arxiv_id,)),)),), arxiv_id=arxiv_id)

    toks = _lex(q)
    groups: list[list[_Tok]] = []
    pending_or = False
    for t in toks:
        if t.kind == "or":
            if not groups or pending_or:
                raise InvalidQuery("OR must stand between two terms, e.g. gan OR diffusion")
            pending_or = True
            continue
        if pending_or:
            if t.negated or groups[-1][-1].negated:
                raise InvalidQuery("OR cannot join an excluded (-) term")
            groups[-1].append(t)
            pending_or = False
        else:
            groups.append([t])
    if pending_or:
        raise InvalidQuery("dangling OR at the end of the query: OR needs a term on both sides")
    if not groups:
        raise InvalidQuery("empty query")

    clauses = tuple(Clause(tuple(_atom(t) for t in g), negated=g[0].negated) for g in groups)
    if all(c.negated for c in clauses) and not any(a.terms for c in clauses for a in c.atoms):
        raise InvalidQuery("the query only excludes words that are not searchable")
    positive: set[str] = set()
    text_parts: list[str] = []
    for c in clauses:
        if c.negated:
            continue
        for a in c.atoms:
            if a.is_prose and a.terms:
                positive.update(a.terms)
                text_parts.append(a.value)
    whole_id = None
    if len(clauses) == 1 and not clauses[0].negated and len(clauses[0].atoms) == 1 and clauses[0].atoms[0].field == "id":
        whole_id = clauses[0].atoms[0].terms[0]
    return ParsedQuery(raw=q, clauses=clauses, arxiv_id=whole_id, positive_terms=frozenset(positive),
                       text=" ".join(text_parts))
