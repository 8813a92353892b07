# ruff: noqa: E701, E702  (a compact measuring script)
"""BM25 ablation over the BEIR development collections (docs/quality.md, "what each change did").

    python -m benchmarks.bm25_ablation '[{"mode": "fields", "reps": 1, "tb": 0.5}, {"mode": "combined", "reps": 2, "qtf": 1}]'

Rebuilds a small tantivy index per collection with our tokenizer and scores variants of the
serving configuration: ``fields`` = the former per-field sum (``tb`` × BM25(title) +
BM25(abstract)), ``combined`` = one field with the title repeated ``reps`` times (what
indexer.lexical.bm25 serves), ``qtf`` = query term frequency, ``rm3`` = [feedback docs, terms,
original weight] with ``rm3idf`` weighting. Ratios are against bm25s figures measured by
``papers eval retrieval --mode bm25s`` in the same session (BM25S below). Not product code.
"""
import json
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

import tantivy
from tantivy import Occur, Query

from indexer.evaluation.retrieval import load_beir, score_runs
from indexer.text.tokenizer import Tokenizer

SETS = ["scifact", "cisi", "cran", "med", "npl"]
ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"

def build(data, tok, reps):
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field("title_t", tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("abstract_t", tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("text_t", tokenizer_name="whitespace", index_option="freq")
    schema = sb.build()
    d = tempfile.mkdtemp()
    ix = tantivy.Index(schema, path=d)
    w = ix.writer(heap_size=200_000_000, num_threads=1)
    docterms = {}
    for pid, (t, x) in data.corpus.items():
        tt, xt = tok.tokenize(t), tok.tokenize(x)
        doc = tantivy.Document()
        doc.add_text("id", pid); doc.add_text("title_t", " ".join(tt)); doc.add_text("abstract_t", " ".join(xt))
        doc.add_text("text_t", " ".join(tt * reps + xt))
        w.add_document(doc)
        docterms[pid] = (tt, xt)
    w.commit(); w.wait_merging_threads(); ix.reload()
    return ix, schema, docterms

def run_query(ix, schema, weights, mode, tb, limit=100):
    s = ix.searcher()
    cl = []
    for t, wt in weights.items():
        if mode == "combined":
            q = Query.term_query(schema, "text_t", t, index_option="freq")
            cl.append((Occur.Should, Query.boost_query(q, wt) if wt != 1 else q))
        else:
            cl.append((Occur.Should, Query.boost_query(Query.term_query(schema, "title_t", t, index_option="freq"), tb * wt)))
            q = Query.term_query(schema, "abstract_t", t, index_option="freq")
            cl.append((Occur.Should, Query.boost_query(q, wt) if wt != 1 else q))
    if not cl: return []
    res = s.search(Query.boolean_query(cl), limit=limit)
    return [(s.doc(a).get_first("id"), sc) for sc, a in res.hits]

def rm3(run, docterms, qw, reps, fb_docs, fb_terms, orig_w, df, N):
    # relevance model from top fb_docs
    top = run[:fb_docs]
    if not top: return qw
    scores = [sc for _, sc in top]
    m = max(scores)
    ps = [math.exp(sc - m) for sc in scores]; z = sum(ps); ps = [p / z for p in ps]
    rm = Counter()
    for (pid, _), p in zip(top, ps, strict=True):
        tt, xt = docterms[pid]
        terms = tt * reps + xt
        c = Counter(terms); L = len(terms) or 1
        for t, n in c.items():
            rm[t] += p * n / L
    # idf-weighting optional
    for t in list(rm):
        if df is not None:
            rm[t] *= math.log(1 + (N - df[t] + .5) / (df[t] + .5)) if df.get(t) else 0
    best = rm.most_common(fb_terms)
    zs = sum(v for _, v in best) or 1
    qs = sum(qw.values())
    out = Counter({t: orig_w * w / qs for t, w in qw.items()})
    for t, v in best:
        out[t] += (1 - orig_w) * v / zs
    # scale so that max orig weight ~1
    mx = max(out.values())
    return {t: v / mx for t, v in out.items()}

_CACHE: dict = {}


def evaluate(cfg, cache=_CACHE):
    tok = cache.setdefault("tok", Tokenizer())
    out = {}
    for name in SETS:
        data = cache.get(name) or cache.setdefault(name, load_beir(ROOT / name))
        key = (name, cfg["reps"])
        if key not in cache:
            cache[key] = build(data, tok, cfg["reps"])
        ix, schema, docterms = cache[key]
        df = None
        if cfg.get("rm3"):
            dk = (name, "df", cfg["reps"])
            if dk not in cache:
                c = Counter()
                for tt, xt in docterms.values(): c.update(set(tt + xt))
                cache[dk] = c
            df = cache[dk]
        runs = {}
        for qid, q in data.queries.items():
            qt = tok.tokenize(q)
            qw = dict(Counter(qt)) if cfg.get("qtf") else dict.fromkeys(qt, 1.0)
            r = run_query(ix, schema, qw, cfg["mode"], cfg.get("tb", 0.5))
            if cfg.get("rm3"):
                fd, ft, ow = cfg["rm3"]
                qw2 = rm3(r, docterms, qw, cfg["reps"], fd, ft, ow, df if cfg.get("rm3idf") else None, len(data.corpus))
                r = run_query(ix, schema, qw2, cfg["mode"], cfg.get("tb", 0.5))
            runs[qid] = r
        out[name] = score_runs(runs, data.qrels)["ndcg@10"]
    return out

BM25S = {"scifact": 0.6863, "cisi": 0.3858, "cran": 0.3735, "med": 0.6957, "npl": 0.4280}  # papers eval --mode bm25s
def report(label, res):
    ratios = {k: res[k] / BM25S[k] for k in res}
    print(f"{label:50s}", " ".join(f"{k}={v:.3f}({ratios[k]:.2f})" for k, v in res.items()),
          f"mean_ratio={sum(ratios.values())/len(ratios):.3f} min={min(ratios.values()):.2f}", flush=True)

if __name__ == "__main__":
    cfgs = json.loads(sys.argv[1])
    for c in cfgs:
        report(json.dumps(c), evaluate(c))
