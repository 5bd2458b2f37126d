"""Fit and measure the answerability estimate on XQuAD with half of its articles withheld from the index.

    .venv/bin/python scripts/fit_answerable.py [--langs ar en en-plain] [--workdir DIR] [--answer 0.5 --closest 0.2]

Runs the withheld-article protocol (rag/eval/withheld.py: the 24 even-numbered articles indexed, every question
asked through AnswerPipeline in quote mode; rows kept in --workdir between runs), then fits a logistic model per
question language on the signals (rag/answer/answerable.py) two-fold by article: fitted on one half of the
articles, measured on the other. Prints the figures of each tier per language at the given thresholds, a threshold
sweep, the reliability table and ECE, and the weights fitted on all articles for CALIBRATIONS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.answerable import FEATURES, Calibration, Signals  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embed.embedder import embedder_for  # noqa: E402
from rag.eval import withheld  # noqa: E402
from rag.eval.evaluate import load_xquad  # noqa: E402
from rag.retrieve.translate import make_translator  # noqa: E402

Rows = Sequence[withheld.Row]


def collect(args: argparse.Namespace, near: bool = False) -> dict[str, list[withheld.Row]]:
    """The rows of each language (kept in --workdir); `near`: the paragraph variant (near-topic questions)."""
    s = get_settings()
    out = {}
    data = load_xquad(args.xquad)
    missing = None
    if near:
        data, missing = withheld.paragraphs_withheld(data)
    for lang in args.langs:
        path = args.workdir / f"rows-{'near-' if near else ''}{lang}.jsonl"
        if path.exists() and not args.again:
            out[lang] = withheld.load(path)
            continue
        translator = make_translator(s) if lang == "en" else None
        folder = args.workdir / ("index-near" if near else "index")
        out[lang] = withheld.run(data, [lang], embedder_for(s), s, folder, translator, True, missing)
        withheld.save(out[lang], path)
    return out


def fit(rows: Rows, use: Sequence[str], l2: float = 1.0, steps: int = 50) -> tuple[float, np.ndarray]:
    """Logistic regression (Newton steps, L2 on standardised signals): P(the best key quote answers)."""
    cols = [FEATURES.index(k) for k in use]
    x = np.array([[r.signals[c] for c in cols] for r in rows if r.signals], dtype=np.float64)
    y = np.array([r.right for r in rows if r.signals], dtype=np.float64)
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    w = np.zeros(z.shape[1])
    reg = np.eye(len(w)) * l2
    reg[0, 0] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + reg @ w
        hess = z.T @ (z * (p * (1 - p))[:, None]) + reg
        w -= np.linalg.solve(hess, grad)
    raw = np.zeros(len(FEATURES))
    raw[cols] = w[1:] / sd
    return float(w[0] - (w[1:] * mu / sd).sum()), raw


def predict(bias: float, weights: np.ndarray, row: withheld.Row) -> float | None:
    """The row's confidence under these weights, computed as the product computes it."""
    if not row.signals:
        return None
    signals = Signals(**dict(zip(FEATURES, row.signals, strict=True)))
    return Calibration(bias, tuple(float(w) for w in weights)).probability(signals)


def cross_fold(rows: Rows, use: Sequence[str]) -> dict[str, float | None]:
    """Each row's confidence from weights fitted on the other half of the articles."""
    conf: dict[str, float | None] = {}
    for half in (0, 1):
        train = [r for r in rows if withheld.fold_of(r.article) != half]
        bias, w = fit(train, use)
        for r in rows:
            if withheld.fold_of(r.article) == half:
                conf[r.qid + r.lang] = predict(bias, w, r)
    return conf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xquad", type=Path, default=ROOT.parent / "shared" / "bench" / "xquad")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/rag-fit-answerable"))
    ap.add_argument("--langs", nargs="+", default=["ar", "en", "en-plain"])
    ap.add_argument("--answer", type=float, default=0.5)
    ap.add_argument("--closest", type=float, default=0.15)
    ap.add_argument("--use", nargs="+", default=list(FEATURES))
    ap.add_argument("--no-near", action="store_true", help="fit on the article protocol alone")
    ap.add_argument("--again", action="store_true", help="ask the questions again (rows are kept in --workdir)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    far = collect(args)
    near = {} if args.no_near else collect(args, near=True)
    for name in ("ar", "en"):
        members = [lang for lang in args.langs if lang.startswith(name)]
        rows = [r for lang in members for r in far.get(lang, [])]
        extra = [replace(r, lang="near-" + r.lang) for lang in members for r in near.get(lang, [])]
        if not rows:
            continue
        use = [k for k in args.use if name == "en" or k != "rendered"]
        conf = cross_fold(rows + extra, use)

        def scored(r: withheld.Row, conf: dict[str, float | None] = conf) -> float | None:
            return conf[r.qid + r.lang]

        print(f"\n== {name}: {len(rows)} + {len(extra)} near-topic questions, signals {use}")
        for lang in sorted({r.lang for r in rows + extra}):
            part = [r for r in rows + extra if r.lang == lang]
            now = withheld.report(part, args.answer, args.closest)
            new = withheld.report(part, args.answer, args.closest, scored)
            print(f"  {lang}: shipped estimate {now}")
            print(f"  {lang}: two-fold fit     {new}")
            print("   answer_min  indexed_right  withheld_answered  precision")
            for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
                rep = withheld.report(part, t, min(t, args.closest), scored)
                right, false, precision = rep["indexed_right"], rep["withheld_answered"], rep["precision"]
                print(f"   {t:9.2f}  {right:13.3f}  {false:17.3f}  {precision:9.3f}")
            print("   reliability (bin, n, mean confidence, share right):")
            for line in withheld.reliability(part, scored):
                print("    ", line)
        bias, w = fit(rows + extra, use)
        weights = ", ".join(f"{v:.4f}" for v in w)
        print(f'  fitted on all: "{name}": Calibration({bias:.4f}, ({weights})),')


if __name__ == "__main__":
    main()
