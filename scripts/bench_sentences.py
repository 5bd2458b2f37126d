"""Why every sentence is embedded on its own: the right paragraph's best sentence, two ways (docs/large-archives.md).

    .venv/bin/python scripts/bench_sentences.py [--xquad ../shared/bench/xquad]

For each of XQuAD's 1,190 questions (Arabic and English), among the sentences of its gold Arabic paragraph, the one
whose vector is closest to the question's: does it hold the gold answer span? Sentence vectors made two ways:
"alone" (each sentence embedded as a passage of its own, what the index does, at the cost of embedding the text
twice: once as chunks, once as sentences) and "pooled" (the mean of the sentence's token states from one pass over
the whole paragraph, "late chunking": no extra tokens). Prints the share for each, and the seconds each took.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Compare sentence vectors embedded alone with ones pooled from the paragraph's pass."""
    import torch

    from rag.config import get_settings
    from rag.embed.embedder import embedder_for
    from rag.eval.evaluate import load_xquad
    from rag.text.sentences import sentence_spans

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared" / "bench" / "xquad")
    args = parser.parse_args()
    xquad = load_xquad(args.xquad)
    embedder = embedder_for(get_settings())
    tokenizer, transformer = embedder.model.tokenizer, embedder.model[0].auto_model
    texts = {a.id: a.text for a in xquad.articles}
    paragraphs = sorted(set(xquad.gold.values()))
    spans = {p: sentence_spans(texts[p[0]][p[1] : p[2]]) or [(0, p[2] - p[1])] for p in paragraphs}

    t0 = time.perf_counter()
    flat = [(p, span) for p in paragraphs for span in spans[p]]
    vectors = embedder.embed_documents([texts[p[0]][p[1] + a : p[1] + b] for p, (a, b) in flat])
    alone: dict[tuple[str, int, int], list[np.ndarray]] = {}
    for (p, _), v in zip(flat, vectors, strict=True):
        alone.setdefault(p, []).append(v)
    alone_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    pooled: dict[tuple[str, int, int], list[np.ndarray]] = {}
    prefix = "passage: "
    for p in paragraphs:
        found = tokenizer(prefix + texts[p[0]][p[1] : p[2]], return_offsets_mapping=True, truncation=True,
                          max_length=512, return_tensors="pt")  # fmt: skip
        offsets = found.pop("offset_mapping")[0].numpy()
        with torch.no_grad():
            states = transformer(**found).last_hidden_state[0].numpy()
        start, end = offsets[:, 0] - len(prefix), offsets[:, 1] - len(prefix)
        for a, b in spans[p]:
            inside = (start >= a) & (end <= b) & (end > start)
            v = states[inside].mean(axis=0) if inside.any() else states.mean(axis=0)
            pooled.setdefault(p, []).append(v / np.linalg.norm(v))
    pooled_s = time.perf_counter() - t0

    print(f"{len(paragraphs)} paragraphs, {len(flat)} sentences; alone {alone_s:.0f} s, pooled {pooled_s:.0f} s")
    print("| questions | best sentence holds the answer: alone | pooled |\n|---|---|---|")
    for lang in ("ar", "en"):
        asked = [(qid, q) for qid, q in xquad.questions[lang] if qid in xquad.answers]
        qv = embedder.embed_queries([q for _, q in asked])
        shares = []
        for way in (alone, pooled):
            held = 0
            for (qid, _), v in zip(asked, qv, strict=True):
                p, (_, a0, a1) = xquad.gold[qid], xquad.answers[qid]
                a, b = spans[p][int(np.argmax(np.stack(way[p]) @ v))]
                held += p[1] + a <= a0 and a1 <= p[1] + b
            shares.append(held / len(asked))
        print(f"| {lang} ({len(asked)}) | {shares[0]:.4f} | {shares[1]:.4f} |")


if __name__ == "__main__":
    main()
