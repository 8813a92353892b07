"""BibTeX entries for papers, in the shape arXiv itself exports (``@misc`` with eprint).

TeX in titles is kept (BibTeX is TeX); characters that would break the entry — an
unbalanced brace, a bare ``%`` that comments out the rest of a line — are neutralised.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_STOP = {"a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "towards", "toward", "via", "from", "by", "at", "is", "are"}
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&#])")


def _ascii_word(text: str) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", norm.lower())


def _last_name(author: str) -> str:
    parts = author.replace(",", " ").split()
    return parts[-1] if parts else ""


def cite_key(paper: dict[str, Any]) -> str:
    """``vaswani2017attention``-style key; falls back to the arXiv id."""
    authors = paper.get("authors") or []
    name = _ascii_word(_last_name(authors[0])) if authors else ""
    year = str(paper.get("published") or "")[:4]
    word = ""
    for w in re.findall(r"[A-Za-z0-9]+", paper.get("title") or ""):
        if w.lower() not in _STOP:
            word = _ascii_word(w)
            break
    key = f"{name}{year}{word}"
    return key if name else "arxiv" + re.sub(r"[^0-9A-Za-z]", "", paper.get("id", ""))


def _balanced(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def bib_value(text: str) -> str:
    """A field value safe inside ``{...}``: one line, braces balanced, bare % & # escaped."""
    text = " ".join(str(text).split())
    text = _BARE_SPECIAL.sub(r"\\\1", text)
    if not _balanced(text):
        text = text.replace("{", "").replace("}", "")
    return text


def bibtex_entry(paper: dict[str, Any]) -> str:
    pid = paper["id"]
    fields: list[tuple[str, str]] = [
        ("title", "{" + bib_value(paper.get("title", "")) + "}"),
        ("author", bib_value(" and ".join(paper.get("authors") or []))),
        ("year", str(paper.get("published") or "")[:4]),
        ("eprint", pid),
        ("archivePrefix", "arXiv"),
    ]
    primary = paper.get("primary_category") or (paper.get("categories") or [""])[0]
    if primary:
        fields.append(("primaryClass", primary))
    if paper.get("doi"):
        fields.append(("doi", bib_value(paper["doi"])))
    if paper.get("journal_ref"):
        fields.append(("note", bib_value(paper["journal_ref"])))
    fields.append(("url", f"https://arxiv.org/abs/{pid}"))
    width = max(len(k) for k, _ in fields)
    body = ",\n".join(f"  {k.ljust(width)} = {{{v}}}" for k, v in fields)
    return f"@misc{{{cite_key(paper)},\n{body}\n}}\n"
