"""Build the two English word lists the keyword extractor ships (indexer/data/):

- ``english-common-words.txt``: the most frequent words of general English, from the
  ``wordfreq`` package's data (Robyn Speer et al., data CC BY-SA 4.0; the derived list
  is shipped under the same licence, with the attribution in its header). A *single*
  word on this list is never a keyword ("goal", "small", "task", "note"): it says
  nothing a reader could search by. Topic words that name a field on their own
  (``TECHNICAL_TERMS``: "cancer", "galaxy", "privacy", ...) are taken off the list.
- ``english-verb-forms.txt``: verb forms that are never nouns or adjectives in the
  ``lemminflect`` package's lexicon (MIT; derived from the NLM SPECIALIST Lexicon),
  kept (with their British -ise spellings) only when the arXiv corpus itself (the 100,000
  titles+abstracts of ../shared/data/arxiv/papers.jsonl.gz) uses them at least 5 times
  and almost never after an article or possessive ("the compute" makes "compute" a
  noun). Base and -s forms end a noun phrase ("graph neural networks operate", "method
  linearises"); -ing forms may not start one ("extracting features"); comparatives
  ("closer", "larger") end one too.

Neither package is a dependency of the project: install them somewhere temporary,

    pip install --target /tmp/wl wordfreq lemminflect
    PYTHONPATH=/tmp/wl python -m benchmarks.make_word_lists [--shared DIR] [--top 3000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "indexer" / "data"
COMMON_OUT = DATA / "english-common-words.txt"
VERBS_OUT = DATA / "english-verb-forms.txt"

# Frequent English words that are a paper's topic on their own (a reader searches by
# them, and no longer phrase says it better). Everything else on the frequency list is
# too general to be a keyword by itself.
TECHNICAL_TERMS = frozenset(
    """ai dna rna gps covid cancer galaxy galaxies universe gravity climate privacy security
    internet twitter facebook youtube wikipedia bitcoin blockchain vaccine vaccines virus viruses
    asthma diabetes obesity surgery autism dementia malaria hiv earthquake earthquakes
    democracy economy inflation unemployment poverty music football chess poker religion
    traffic robot robots robotics software hardware algorithm algorithms carbon oxygen
    hydrogen nitrogen iron copper gold silver uranium protein proteins genome genes gene
    cells neurons brain solar lunar moon sun planet planets mars jupiter saturn earth
    plasma laser lasers quantum electron electrons photon photons atom atoms molecule
    molecules crystal crystals magnet magnets battery batteries""".split()
)

_ING_BASE_FORMS = frozenset("bring sing sting string spring swing cling fling sling wring ring wing".split())
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_DETERMINERS = frozenset("the a an this our its their his her your my each every".split())


def common_words(top: int) -> list[str]:
    import wordfreq

    words = []
    for w in wordfreq.top_n_list("en", top, wordlist="large"):
        if w.isalpha() and w.isascii() and w not in TECHNICAL_TERMS:
            words.append(w)
    return words


def _lexicon() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """form → its parts of speech, and form → its adjective lemmas, in lemminflect's
    lemma table (lines ``form,pos,lemma``)."""
    import lemminflect

    path = Path(lemminflect.__file__).parent / "resources" / "lemma_lu.csv.gz"
    pos: dict[str, set[str]] = defaultdict(set)
    adj_lemmas: dict[str, set[str]] = defaultdict(set)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split(",")
            if len(parts) >= 3:
                form = parts[0].lower()
                pos[form].add(parts[1])
                if parts[1] in ("adj", "adv"):
                    adj_lemmas[form].add(parts[2].lower())
    return pos, adj_lemmas


def _corpus_counts(shared: Path, limit: int | None) -> tuple[Counter, Counter, Counter]:
    """Per word: occurrences, occurrences after a determiner, after a content word."""
    from indexer.text.phrases import _BREAK_WORDS

    total: Counter[str] = Counter()
    after_det: Counter[str] = Counter()
    after_content: Counter[str] = Counter()
    with gzip.open(shared / "arxiv" / "papers.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            rec = json.loads(line)
            toks = _WORD.findall(f"{rec['title']}. {rec['abstract']}".lower())
            prev = ""
            for t in toks:
                total[t] += 1
                if prev in _DETERMINERS:
                    after_det[t] += 1
                elif prev and prev not in _BREAK_WORDS:
                    after_content[t] += 1
                prev = t
    return total, after_det, after_content


def _british(form: str) -> str | None:
    for us, uk in (("izes", "ises"), ("ize", "ise"), ("izing", "ising")):
        if form.endswith(us):
            return form[: -len(us)] + uk
    return None


def verb_forms(shared: Path, limit: int | None) -> list[str]:
    lex, adj_lemmas = _lexicon()
    forms: dict[str, str] = {}  # form -> "v" (base/-s), "g" (-ing), "c" (comparative)
    for form, pos in lex.items():
        if not form.isalpha():
            continue
        if pos <= {"verb", "aux"} and "verb" in pos:
            if form.endswith("ed"):
                continue  # participles: indexer.text.phrases already trims them (_bad_end)
            kind = "g" if form.endswith("ing") and form not in _ING_BASE_FORMS else "v"
            forms[form] = kind
        elif pos <= {"adj", "adv"} and form.endswith(("er", "est")) and form not in adj_lemmas[form]:
            forms[form] = "c"  # an inflected comparative/superlative ("larger", "closest")
    total, after_det, after_content = _corpus_counts(shared, limit)
    # words the lexicon lacks: -ize/-izes/-ises/-ifies are verbs ("linearises", "discretize")
    for form in total:
        if form not in lex and form.isalpha() and len(form) > 6 and form.endswith(("izes", "ises", "ifies", "ize")):
            forms[form] = "v"
    out = []
    for form, kind in forms.items():
        n = total[form]
        if n < 5:
            continue
        if kind != "c" and after_det[form] / n >= 0.03:
            continue  # used as a noun in scientific writing ("the compute", "a bound")
        if kind == "g" and after_content[form] / n >= 0.3:
            continue  # a noun after its modifier: "quantum computing", "edge computing"
        out.append(f"{form}\t{kind}")
        uk = _british(form)  # "linearises" is as much a verb as "linearizes", however rare
        if uk and uk not in lex:
            out.append(f"{uk}\t{kind}")
    return sorted(set(out))


def _write(path: Path, header: str, lines: list[str]) -> None:
    body = "".join(f"# {h}\n" if h else "#\n" for h in header.strip().splitlines()) + "\n".join(lines) + "\n"
    path.write_text(body, encoding="utf-8")
    print(f"wrote {path} ({len(lines)} entries, {len(body.encode()) / 1e3:.0f} kB)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--top", type=int, default=3000)
    ap.add_argument("--limit", type=int, default=None, help="read only the first N corpus records")
    args = ap.parse_args()
    from importlib.metadata import version

    _write(
        COMMON_OUT,
        f"""The {args.top} most frequent words of English (wordfreq {version('wordfreq')}, "large" list, en),
less letters-only rejects and the topic words of benchmarks/make_word_lists.py TECHNICAL_TERMS.
Derived from wordfreq by Robyn Speer et al. (https://pypi.org/project/wordfreq/), whose word
frequency data is licensed CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/);
this derived list is shared under the same licence. Built by benchmarks/make_word_lists.py.""",
        common_words(args.top),
    )
    _write(
        VERBS_OUT,
        f"""English verb forms that are never nouns or adjectives (kind: v = base or -s form,
g = -ing form, c = comparative/superlative adjective), from the lexicon of lemminflect
{version('lemminflect')} (MIT licence; https://pypi.org/project/lemminflect/), itself derived
from the NLM SPECIALIST Lexicon; kept when the arXiv corpus uses them and rarely after an
article. Built by benchmarks/make_word_lists.py. Format: form<TAB>kind.""",
        verb_forms(args.shared, args.limit),
    )


if __name__ == "__main__":
    main()
