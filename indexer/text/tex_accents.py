"""TeX accents and letters in titles, abstracts and author names, as Unicode for display.

arXiv metadata keeps the authors' TeX: ``P\\'etritis``, ``Schr\\"odinger``, ``\\v{S}ediv\\'y``,
``Erd\\H{o}s``, ``\\AA{}ngstr\\"om``. Readers should see ``Pétritis``. The mapping from macro to
character is pylatexenc's (``latex2text``), not a table of ours; this module only finds the
accent and letter macros *outside math* (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]`` stay for
KaTeX) and hands each to it, so nothing else in the text (other macros, ``%``, ``~``, ``--``)
changes.

Display only: the index is built from the stored text as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache

# math that KaTeX renders: never touched
_MATH = re.compile(r"\$\$.+?\$\$|(?<!\\)\$(?:\\.|[^$\\])+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)
_ARG = r"(?:\{\s*\\?[A-Za-z]\s*\}|\\[ij](?![A-Za-z]))"
# \'e \"{o} \^\i  (symbol accents: a letter may follow at once); \v{s} \c c \H{o} (letter
# accents: a brace group or a space, else it is another macro such as \cite); \ss \o \AA
# (letters; `Stra\ss e` is one word); \& \% \_ \# (escaped characters; not \$, which KaTeX
# reads as an escaped dollar). Optionally wrapped in one brace group: {\'e}.
_MACRO = (
    r"\\['`^\"~=.]\s*(?:" + _ARG + r"|[A-Za-z])"
    r"|\\[uvHckdbrt](?:\s*" + _ARG + r"|\s+[A-Za-z])"
    r"|\\(?:ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])(?:\{\}| (?=[A-Za-z]))?"
    r"|\\[&%_#]"
)
_ACCENT = re.compile(r"\{(?:" + _MACRO + r")\}|" + _MACRO)


@lru_cache(maxsize=4096)
def _convert(macro: str) -> str:
    return _converter().latex_to_text(macro)


@lru_cache(maxsize=1)
def _converter():
    from pylatexenc.latex2text import (
        LatexNodes2Text,  # heavy: 40 ms, only for text with a TeX accent
    )

    return LatexNodes2Text(math_mode="verbatim")


def _text_part(text: str) -> str:
    return _ACCENT.sub(lambda m: _convert(m.group(0)), text)


def render_tex_accents(text: str) -> str:
    """``text`` with TeX accent/letter macros outside math as Unicode characters."""
    if not text or "\\" not in text:
        return text
    out: list[str] = []
    pos = 0
    for m in _MATH.finditer(text):
        out.append(_text_part(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_text_part(text[pos:]))
    return "".join(out)


DISPLAY_FIELDS = ("title", "abstract", "comments", "journal_ref")


def paper_for_display(paper: dict) -> dict:
    """A copy of a paper dict (``SearchEngine.paper``) with its text fields and author names
    rendered; BibTeX is made from the original, which keeps the TeX."""
    out = dict(paper)
    for key in DISPLAY_FIELDS:
        if isinstance(out.get(key), str):
            out[key] = render_tex_accents(out[key])
    out["authors"] = [render_tex_accents(a) for a in out.get("authors") or []]
    return out
