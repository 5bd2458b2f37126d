"""Fit and measure the key-quote score on XQuAD: which mix of signals puts the gold answer in the best quote.

    .venv/bin/python scripts/fit_quotes.py --query-lang ar [--no-translation] [--passages 3]

Indexes the 48 Arabic XQuAD articles with the product's chunker and embedder (kept in --workdir between runs),
retrieves the passages for every question as the product does, collects every candidate sentence's signals
(rag/answer/quotes.py) and grid-searches the weights. Prints quote accuracy @1 and @3 for the plain cosine, for each
signal added alone and for the best mix, on all questions and two-fold by article (fitted on one half,
measured on the other) so the figures are not those of weights fitted to the very questions they score.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.quotes import SIGNALS, QuotePicker, QuoteWeights  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embed.embedder import embedder_for  # noqa: E402
from rag.eval.evaluate import load_xquad  # noqa: E402
from rag.index.build import index_articles  # noqa: E402
from rag.index.store import load_index  # noqa: E402
from rag.retrieve.retriever import retriever_for  # noqa: E402
from rag.retrieve.translate import make_translator  # noqa: E402


def collect(args: argparse.Namespace) -> list[dict]:  # type: ignore[type-arg]
    """Per question: its article half, and per candidate its signals and whether it holds the gold answer."""
    s = get_settings(translate_queries=not args.no_translation)
    data = load_xquad(args.xquad)
    embedder = embedder_for(s)
    workdir = args.workdir / f"index-{s.chunk_tokens}-{s.chunk_overlap}"
    if not (workdir / "current").exists():
        index_articles(data.articles, workdir, embedder, s.index_spec)
    index = load_index(workdir, s.index_spec)
    translator = make_translator(s) if args.query_lang == "en" else None
    retriever = retriever_for(index, embedder, s, translator)
    picker = QuotePicker(retriever.index, retriever.bm25)
    rows = []
    for i, (qid, question) in enumerate(data.questions[args.query_lang]):
        query = retriever.query(question)
        hits = retriever.search(query, args.passages)
        aid, a, b = data.answers[qid]
        cands = picker.candidates(query, hits)
        rows.append(
            {
                "half": int(aid[-2:]) % 2,
                "x": [c.signals() for c in cands],
                "at": [[c.chunk.article_id, c.start, c.end] for c in cands],
                "answer": [aid, a, b],
                "gold": [c.chunk.article_id == aid and c.start <= a and b <= c.end for c in cands],
            }
        )
        if i % 100 == 0:
            print(f"{i} questions", file=sys.stderr)
    return rows


def accuracy(rows: list[dict], w: np.ndarray) -> tuple[float, float]:  # type: ignore[type-arg]
    """Share of questions whose best (and best 3) candidates hold the gold answer."""
    at1 = at3 = 0
    for r in rows:
        if not r["x"]:
            continue
        order = np.argsort(-(np.asarray(r["x"]) @ w), kind="stable")
        gold = np.asarray(r["gold"])[order]
        at1 += bool(gold[0])
        at3 += bool(gold[:3].any())
    return at1 / len(rows), at3 / len(rows)


def fit(rows: list[dict], use: Sequence[str], l2: float = 0.01, steps: int = 1500) -> np.ndarray:  # type: ignore[type-arg]
    """Conditional logit: maximise the softmax probability of the gold candidates among each question's
    candidates, over the signals in `use` (the others weigh 0); scaled so that dense weighs 1."""
    mask = np.array([k in use for k in SIGNALS], dtype=float)
    groups = [r for r in rows if any(r["gold"])]
    width = max(len(r["x"]) for r in groups)
    x = np.zeros((len(groups), width, len(SIGNALS)))
    gold = np.zeros((len(groups), width))
    valid = np.zeros((len(groups), width), dtype=bool)
    for i, r in enumerate(groups):
        x[i, : len(r["x"])] = r["x"]
        gold[i, : len(r["gold"])] = r["gold"]
        valid[i, : len(r["x"])] = True
    w = np.zeros(len(SIGNALS))
    w[0] = 20.0
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):  # Adam on the mean log-likelihood
        z = np.where(valid, x @ w, -np.inf)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        pg = p * gold
        pg /= pg.sum(axis=1, keepdims=True)
        grad = (np.einsum("qc,qcf->f", pg - p, x) / len(groups) - l2 * w) * mask
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w += 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w / w[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared" / "bench" / "xquad")
    parser.add_argument("--query-lang", choices=("en", "ar"), default="ar")
    parser.add_argument("--no-translation", action="store_true", help="English questions without their rendering")
    parser.add_argument("--passages", type=int, default=3, help="retrieved passages whose sentences compete")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rag-fit-quotes"))
    parser.add_argument("--dump", type=Path, help="write the collected signals to this JSON file")
    parser.add_argument("--load", type=Path, help="read signals collected before instead of collecting")
    args = parser.parse_args()
    rows = json.loads(args.load.read_text()) if args.load else collect(args)
    if args.dump:
        args.dump.write_text(json.dumps(rows))
    default = np.array([getattr(QuoteWeights(), k) for k in SIGNALS])
    print(f"{args.query_lang} questions: {len(rows)}, passages {args.passages}, translation {not args.no_translation}")
    print(f"oracle (some candidate holds the answer): {np.mean([any(r['gold']) for r in rows]):.3f}")
    variants = {"cosine only": ["dense"]}
    variants |= {f"+ {k}": ["dense", k] for k in SIGNALS[1:]}
    variants["all signals"] = list(SIGNALS)
    for name, use in variants.items():
        w = fit(rows, use) if len(use) > 1 else np.eye(len(SIGNALS))[0]
        a1, a3 = accuracy(rows, w)
        shown = ", ".join(f"{k}={x:.3f}" for k, x in zip(SIGNALS, w, strict=True) if k in use)
        print(f"{name:<14} @1 {a1:.3f}  @3 {a3:.3f}   {shown}")
    a1, a3 = accuracy(rows, default)
    print(
        f"{'product':<14} @1 {a1:.3f}  @3 {a3:.3f}   "
        + ", ".join(f"{k}={x:g}" for k, x in zip(SIGNALS, default, strict=True))
    )
    # two-fold by article: weights fitted on one half, measured on the other
    hits1 = hits3 = 0.0
    for half in (0, 1):
        w = fit([r for r in rows if r["half"] == half], SIGNALS)
        test = [r for r in rows if r["half"] != half]
        a1, a3 = accuracy(test, w)
        hits1, hits3 = hits1 + a1 * len(test), hits3 + a3 * len(test)
        print(
            f"   fitted on half {half}: "
            + ", ".join(f"{k}={x:.3f}" for k, x in zip(SIGNALS, w, strict=True))
            + f" -> other half {a1:.3f}/{a3:.3f}"
        )
    print(
        "two-fold by article (fit on one half, measure the other)",
        f"@1 {hits1 / len(rows):.3f}  @3 {hits3 / len(rows):.3f}",
    )


if __name__ == "__main__":
    main()
