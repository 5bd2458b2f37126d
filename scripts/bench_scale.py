"""Scale benchmark (`make bench-scale`): build, load and search indexes of 10k, 100k and 1M chunks; prints a table.

Corpora are made of real Arabic text: the sentences of the 240 XQuAD paragraphs and of the five seed articles,
recombined. An article of the 10k corpus is a run of consecutive sentences of one paragraph followed by a run
from another (so its chunks read like news, and the product's chunker cuts them); it is built with the product's
build and the real embedding model. The larger corpora reuse the 10k corpus's real vectors: each chunk vector is
w·a + (1 − w)·b plus a little noise (a, b real chunk vectors, w uniform in [0.5, 1], renormalized), its sentence
vectors are derived from a's sentences the same way, and its text is a fresh recombination (for BM25 and the
records). Every phase runs in its own process, which reports its peak RSS.

Search latency is `Retriever.search(question, 10)` with the default hybrid weights on 200 XQuAD questions
(100 Arabic, 100 English), the question's embedding included and no translation (no answer model). Recall@10 is
the approximate index's: the ten best chunks by exact chunk cosine among the candidates it proposes, against
the ten best of an exact search over every chunk.

    .venv/bin/python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

XQUAD = ROOT.parent / "shared" / "bench" / "xquad"
SEEDS = ROOT / "data"
QUESTIONS = 100  # per language


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def paragraphs() -> list[list[str]]:
    """The sentences of every XQuAD paragraph and seed article paragraph (real Arabic news-like text)."""
    from rag.eval.evaluate import load_xquad
    from rag.ingest.articles import read_articles
    from rag.text.sentences import sentence_spans

    texts = [p for a in load_xquad(XQUAD).articles for p in a.text.split("\n\n")]
    texts += [p for a in read_articles(SEEDS)[0] for p in a.text.split("\n\n")]
    out = []
    for text in texts:
        sentences = [text[a:b].strip() for a, b in sentence_spans(text)]
        if len(sentences) >= 2:
            out.append(sentences)
    return out


def recombined(pool: list[list[str]], rng: random.Random) -> str:
    """Two runs of consecutive sentences from two paragraphs."""
    parts = []
    for _ in range(2):
        p = pool[rng.randrange(len(pool))]
        start = rng.randrange(len(p))
        parts.append(" ".join(p[start : start + rng.randint(2, 6)]))
    return "\n\n".join(parts)


def questions() -> list[str]:
    from rag.eval.evaluate import load_xquad

    x = load_xquad(XQUAD)
    rng = random.Random(0)
    return [q for lang in ("ar", "en") for _, q in rng.sample(x.questions[lang], QUESTIONS)]


# ---- phases (each in its own process) ----


def phase_real(size: int, work: Path) -> dict[str, Any]:
    """Build the real corpus of about `size` chunks with the product, then time the raw encoder on the same texts."""
    from rag.config import get_settings
    from rag.embed.embedder import embedder_for
    from rag.index.build import index_articles
    from rag.index.store import load_index
    from rag.ingest.chunking import chunk_articles, make_splitter
    from rag.text.arabic import for_embedding
    from rag.types import Article

    settings = get_settings()
    embedder = embedder_for(settings)
    spec = settings.index_spec
    pool, rng = paragraphs(), random.Random(size)
    splitter = make_splitter(embedder.count_tokens, spec.chunk_tokens, spec.chunk_overlap)
    articles: list[Article] = []
    chunks = 0
    while chunks < size:
        batch = [
            Article(f"a{len(articles) + i:07d}", f"خبر {len(articles) + i}", None, recombined(pool, rng), "")
            for i in range(200)
        ]
        chunks += len(chunk_articles(batch, splitter))
        articles += batch
    index_dir = work / f"faiss-{size}"
    shutil.rmtree(index_dir, ignore_errors=True)
    t0 = time.perf_counter()
    report = index_articles(articles, index_dir, embedder, spec, progress=True)
    build = time.perf_counter() - t0
    index = load_index(index_dir, spec)
    chunk_texts = [for_embedding(c.text) for c in index.chunks]
    sentence_texts = [
        for_embedding(index.articles[index.chunks[s.chunk].article_id].text[s.start : s.end]) for s in index.sentences
    ]
    t0 = time.perf_counter()
    embedder.embed_documents(chunk_texts + sentence_texts)
    raw_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder.embed_documents(chunk_texts)
    raw_chunks = time.perf_counter() - t0
    return {
        "chunks": report.chunks,
        "articles": report.articles,
        "passages": len(chunk_texts) + len(sentence_texts),
        "build_s": build,
        "raw_encoder_s": raw_all,
        "raw_encoder_chunks_only_s": raw_chunks,
        "build_rss_mb": _rss_mb(),
        "disk_mb": _disk_mb(index_dir),
    }


def phase_derived(size: int, work: Path, base: Path) -> dict[str, Any]:
    """Write an index of `size` chunks whose vectors derive from the real corpus's (see the module docstring)."""
    from rag.config import get_settings
    from rag.index.store import load_index
    from rag.index.writer import VersionWriter
    from rag.text.sentences import sentence_spans
    from rag.types import Article, Chunk, Sentence

    settings = get_settings()
    spec = settings.index_spec
    real = load_index(base, spec)
    vecs, svecs, offsets = np.asarray(real.vectors.chunks), np.asarray(real.vectors.sentences), real.vectors.offsets
    pool, rng, nrng = paragraphs(), random.Random(size), np.random.default_rng(size)
    index_dir = work / f"faiss-{size}"
    shutil.rmtree(index_dir, ignore_errors=True)
    per_article, batch_articles = 4, 2000
    t0 = time.perf_counter()

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    with VersionWriter(index_dir, spec, vecs.shape[1]) as writer:
        made = 0
        while made < size:
            n = min(batch_articles * per_article, size - made)
            a, b = nrng.integers(0, len(vecs), n), nrng.integers(0, len(vecs), n)
            w = nrng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
            cvec = unit(w * vecs[a] + (1 - w) * vecs[b] + nrng.normal(0, 0.02, vecs[a].shape))
            articles, chunks, sentences, sv = [], [], [], []
            for i in range(n):
                if i % per_article == 0:
                    aid = f"d{(made + i) // per_article:07d}"
                    text = ""
                chunk_text = recombined(pool, rng).replace("\n\n", " ")
                start = len(text) + (1 if text else 0)
                text = f"{text} {chunk_text}" if text else chunk_text
                chunks.append(Chunk(f"{aid}:{start}-{len(text)}", aid, chunk_text, start, len(text)))
                rows = range(int(offsets[a[i]]), int(offsets[a[i] + 1]))
                spans = sentence_spans(chunk_text)
                k = min(len(rows), len(spans))
                k = k if k > 1 else 0  # as in the product: a one-sentence chunk has no sentence rows
                sentences += [Sentence(i, start + x, start + y) for x, y in spans[:k]]
                mine = svecs[list(rows)[:k]]
                sv.append(unit(w[i] * mine + (1 - w[i]) * vecs[b[i]]) if k else mine)
                if i % per_article == per_article - 1 or i == n - 1:
                    articles.append(Article(aid, aid, None, text, f"{made + i:064d}"))
            writer.add(articles, chunks, cvec, sentences, np.vstack(sv))
            made += n
        writer.commit([], time.perf_counter() - t0, settings.ann_min_chunks)
    return {
        "chunks": size,
        "build_s": time.perf_counter() - t0,
        "build_rss_mb": _rss_mb(),
        "disk_mb": _disk_mb(index_dir),
    }


def phase_search(size: int, work: Path) -> dict[str, Any]:
    """Load the index, time searches, measure the approximate index's recall against exact search."""
    from rag.config import get_settings
    from rag.embed.embedder import embedder_for, use_query_threads
    from rag.index.store import load_index
    from rag.index.vectors import Vectors
    from rag.retrieve.retriever import retriever_for

    settings = get_settings()
    embedder = embedder_for(settings)
    index_dir = work / f"faiss-{size}"
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        index = load_index(index_dir, settings.index_spec)
        loads.append(time.perf_counter() - t0)
    use_query_threads(settings.query_threads)
    retriever = retriever_for(index, embedder, settings, translator=None)
    qs = questions()
    retriever.search(qs[0], 10)  # the embedding model's first call
    times = []
    for q in qs:
        t0 = time.perf_counter()
        retriever.search(q, 10)
        times.append((time.perf_counter() - t0) * 1000)
    search_rss = _rss_mb()  # before the exact searches below read every chunk vector
    v = index.vectors
    exact = Vectors(v.chunks, v.sentences, v.offsets, None, 0)
    recall = []
    if v.ann is not None:
        for vector in embedder.embed_queries(qs):
            truth = set(exact.nearest(vector, 10).tolist())
            pool = v.nearest(vector, 100)  # the retriever proposes max(10·k, 50) candidates per leg
            top = pool[np.argsort(-(np.asarray(v.chunks[pool]) @ vector))[:10]]
            recall.append(len(truth & set(top.tolist())) / 10)
    return {
        "load_s": statistics.median(loads),
        "search_p50_ms": statistics.median(times),
        "search_p95_ms": float(np.percentile(times, 95)),
        "recall_at_10": float(np.mean(recall)) if recall else 1.0,
        "ann": index.manifest.ann,
        "search_rss_mb": search_rss,
    }


PHASES = {"real": phase_real, "derived": phase_derived, "search": phase_search}


def _run(phase: str, size: int, work: Path, base: Path | None = None) -> dict[str, Any]:
    args = [sys.executable, __file__, "--phase", phase, "--size", str(size), "--work", str(work)]
    if base is not None:
        args += ["--base", str(base)]
    done = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-scale")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phase", choices=sorted(PHASES))
    parser.add_argument("--size", type=int)
    parser.add_argument("--base", type=Path)
    args = parser.parse_args()
    if args.phase:
        extra = (args.base,) if args.phase == "derived" else ()
        print(json.dumps(PHASES[args.phase](args.size, args.work, *extra)))  # type: ignore[operator]
        return
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    base = None
    for size in sizes:
        print(f"== {size} chunks: build", file=sys.stderr, flush=True)
        if base is None:
            row = _run("real", size, args.work)
            base = args.work / f"faiss-{size}"
        else:
            row = _run("derived", size, args.work, base)
        print(f"== {size} chunks: load and search", file=sys.stderr, flush=True)
        row |= _run("search", size, args.work) | {"size": size, "backend": "faiss"}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        "| chunks | backend | build s | vs raw encoder (same texts / chunks only) | build peak RSS | disk | load | "
        "search p50 / p95 | recall@10 vs exact | search peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = (
            f"{r['raw_encoder_s'] / r['build_s']:.2f}× / {r['raw_encoder_chunks_only_s'] / r['build_s']:.2f}×"
            if "raw_encoder_s" in r
            else "derived vectors"
        )
        ann = r["ann"]
        kind = "exact" if ann["kind"] == "flat" else f"IVF{ann['nlist']},SQ8 nprobe {ann['nprobe']}"
        cells = [
            f"{r['size']:,}",
            f"{r['backend']} ({kind})",
            f"{r['build_s']:.0f} s",
            ratio,
            f"{r['build_rss_mb'] / 1024:.1f} GB",
            f"{r['disk_mb'] / 1024:.2f} GB",
            f"{r['load_s']:.2f} s",
            f"{r['search_p50_ms']:.0f} / {r['search_p95_ms']:.0f} ms",
            f"{r['recall_at_10']:.3f}",
            f"{r['search_rss_mb'] / 1024:.1f} GB",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
