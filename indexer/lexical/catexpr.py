"""Cool Papers' category algebra: ``cs.AI+cs.LG-cs.CY`` = in cs.AI or cs.LG, not in cs.CY.

Why a parser of its own: arXiv names contain hyphens (``astro-ph``, ``cond-mat.mes-hall``,
``hep-th``), so ``-`` is both a name character and the "exclude" operator. We split with
backtracking against the known archive list: ``cs.AI-cs.CY`` is two names, ``hep-th-hep-ph``
is ``hep-th`` minus ``hep-ph``. An archive name alone (``cs``, ``astro-ph``) matches all of
its subcategories; the BM25 index stores the archive of every category as its own term so
such a filter is one term lookup there too.

Names are canonicalised (archive lower case; subject class lower case for ``cond-mat`` and
``physics``, upper case elsewhere, as arXiv spells them), so ``CS.ai`` means ``cs.AI``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from indexer.errors import InvalidQuery

MAX_EXPR_CHARS = 500

# Current and legacy arXiv archives (legacy ones still appear on old papers).
ARCHIVES = frozenset(
    """astro-ph cond-mat gr-qc hep-ex hep-lat hep-ph hep-th math-ph nlin nucl-ex nucl-th physics
    quant-ph math cs q-bio q-fin stat eess econ acc-phys adap-org alg-geom ao-sci atom-ph bayes-an
    chao-dyn chem-ph cmp-lg comp-gas dg-ga funct-an mtrl-th patt-sol plasm-ph q-alg solv-int
    supr-con na""".split()
)
_LOWER_SUBJECT_ARCHIVES = frozenset({"cond-mat", "physics"})
# one category: archive, optionally "." subject class (letters, hyphenated parts allowed)
_CATEGORY_RE = re.compile(r"([a-z]+(?:-[a-z]+)?)(?:\.([a-z]+(?:-[a-z]+)*))?", re.I)
CATEGORY_TOKEN_RE = re.compile(r"^[a-z]+(?:-[a-z]+)?(?:\.[a-z]+(?:-[a-z]+)*)?$", re.I)


def canonical_category(name: str) -> str:
    """``CS.ai`` → ``cs.AI``; ``Cond-Mat.Mes-Hall`` → ``cond-mat.mes-hall``. Raises InvalidQuery."""
    name = name.strip()
    if not CATEGORY_TOKEN_RE.match(name):
        raise InvalidQuery(f"not an arXiv category: {name!r} (expected e.g. cs.AI or astro-ph)")
    archive, _, subject = name.partition(".")
    archive = archive.lower()
    if archive not in ARCHIVES:
        raise InvalidQuery(f"unknown arXiv archive {archive!r} in category {name!r}")
    if not subject:
        return archive
    if archive in _LOWER_SUBJECT_ARCHIVES:
        subject = subject.lower()  # physics.atom-ph, cond-mat.mes-hall
    elif len(subject) == 2 and "-" not in subject:
        subject = subject.upper()  # cs.AI, math.GT, astro-ph.CO: always two letters
    else:
        raise InvalidQuery(f"unknown subject class {subject!r} in category {name!r} (expected e.g. {archive}.XY)")
    return f"{archive}.{subject}"


def archive_of(category: str) -> str:
    """``cs.AI`` → ``cs``; ``hep-th`` → ``hep-th``."""
    return category.split(".", 1)[0]


def category_terms(categories: Iterable[str]) -> list[str]:
    """Every category plus its archive, canonical and deduplicated: what the index stores so
    that ``cat:cs`` is one term. Unparseable names are kept as given (never lose data)."""
    out: dict[str, None] = {}
    for c in categories:
        c = c.strip()
        if not c:
            continue
        try:
            c = canonical_category(c)
        except InvalidQuery:
            pass
        out[c] = None
        out[archive_of(c)] = None
    return list(out)


@dataclass(frozen=True)
class CategoryExpr:
    """``include`` (any of) and ``exclude`` (none of); an empty include means "everything"."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def matches(self, categories: Iterable[str]) -> bool:
        have = set(category_terms(categories))
        if self.include and not any(c in have for c in self.include):
            return False
        return not any(c in have for c in self.exclude)

    def __str__(self) -> str:
        inc = "+".join(self.include)
        exc = "".join(f"-{c}" for c in self.exclude)
        return inc + exc if inc else exc

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


def _split(expr: str) -> tuple[list[tuple[str, str]] | None, int]:
    """(sign, canonical name) pairs, or None when ``expr`` cannot be split into known names;
    with the furthest position where no known name could be read (to name the culprit)."""
    furthest = 0

    def parse(pos: int, sign: str) -> list[tuple[str, str]] | None:
        nonlocal furthest
        furthest = max(furthest, pos)
        # every way the regex could end a category here, longest first (backtracking)
        m = _CATEGORY_RE.match(expr, pos)
        if not m:
            return None
        ends = sorted({i for i in range(pos + 1, m.end() + 1) if CATEGORY_TOKEN_RE.match(expr[pos:i])}, reverse=True)
        for end in ends:
            try:
                name = canonical_category(expr[pos:end])
            except InvalidQuery:
                continue
            if end == len(expr):
                return [(sign, name)]
            if expr[end] in "+-":
                rest = parse(end + 1, expr[end])
                if rest is not None:
                    return [(sign, name), *rest]
        return None

    parts = parse(1, expr[0]) if expr[0] in "+-" else parse(0, "+")
    return parts, furthest


def _culprit(expr: str, s: str, pos: int) -> str:
    """Why ``s`` (``expr`` normalised) could not be read from ``pos`` on: an unknown
    category name, or stray characters."""
    m = CATEGORY_TOKEN_RE.match(s[pos:].split("+", 1)[0]) or _CATEGORY_RE.match(s, pos)
    token = m.group(0) if m else ""
    if token:
        try:
            canonical_category(token)
        except InvalidQuery:
            return f"unknown category {token!r} in {expr!r} (expected arXiv categories such as cs.AI, astro-ph or math.GT)"
    rest = s[pos + len(token):] or s[pos:]
    return f"malformed category expression {expr!r} near {rest!r} (expected e.g. cs.AI+cs.LG-cs.CY)"


def parse_category_expr(expr: str) -> CategoryExpr:
    """Parse ``cs.AI+cs.LG-cs.CY`` (spaces and commas also separate included names).

    Raises :class:`InvalidQuery` with the offending part named."""
    if expr is None or not expr.strip():
        raise InvalidQuery("empty category expression")
    if len(expr) > MAX_EXPR_CHARS:
        raise InvalidQuery(f"category expression too long (> {MAX_EXPR_CHARS} characters)")
    # a space in a URL-decoded "+" or a comma-separated list both mean "or"
    s = re.sub(r"\s*([+\-,])\s*", r"\1", expr.strip())
    s = re.sub(r"[\s,]+", "+", s)
    if "++" in s or "--" in s or "+-" in s or "-+" in s or s in "+-" or s[-1] in "+-":
        raise InvalidQuery(f"malformed category expression {expr!r}: an operator without a category")
    parts, failed_at = _split(s)
    if parts is None:
        raise InvalidQuery(_culprit(expr, s, failed_at))
    include = tuple(dict.fromkeys(n for sign, n in parts if sign == "+"))
    exclude = tuple(dict.fromkeys(n for sign, n in parts if sign == "-"))
    return CategoryExpr(include=include, exclude=exclude)
