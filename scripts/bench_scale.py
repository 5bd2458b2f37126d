"""Scale benchmark (`make bench-scale`): build, load and search indexes of 10k, 100k and 1M chunks on FAISS, the same
on Milvus Lite (10k and 100k), and the LangChain peer at 10k; prints a table.

Corpora are made of real Arabic text: the sentences of the 240 XQuAD paragraphs and of the five seed articles,
recombined. An article of the 10k corpus is a run of consecutive sentences of one paragraph followed by a run
from another (so its chunks read like news, and the product's chunker cuts them); it is built with the product's
build and the real embedding model, and the raw encoder is timed on a random quarter of the same texts (scaled
up) as the baseline of the build's throughput. The larger corpora reuse the 10k corpus's real vectors: each chunk
vector is w·a + (1 − w)·b plus a little noise (a, b real chunk vectors, w uniform in [0.5, 1], renormalized), its
sentence vectors are derived from a's sentences the same way, and its text is a fresh recombination (for BM25 and
the records). A Milvus row copies the FAISS row's records and vectors into Milvus Lite (its build time is the
inserts'). The LangChain peer splits the same 10k articles with the same tokenizer, chunk size and overlap and runs
`FAISS.from_documents` with `HuggingFaceEmbeddings` on the same model folder. Every phase runs in its own process,
which reports its peak RSS.

Search latency is `Retriever.search(question, 10)` with the default hybrid weights on 200 XQuAD questions
(100 Arabic, 100 English), the question's embedding included and no translation (no answer model). Recall@10 is
the candidate search's: the ten best chunks by exact chunk cosine among the 100 candidates it proposes, against
the ten best of an exact search over every chunk (a repeated chunk's other copy counts: the corpus repeats some).

    .venv/bin/python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--milvus-sizes 10000,100000]
        [--no-langchain] [--no-raw] [--work DIR] [--json]

The summary under the table names the machine (CPU model and flags, AMX granted or not), the passages' precision
(RAG_EMBED_PRECISION, and why auto chose it), the question encoder and the threads on each side, then the build
and search p50 of ours and the peer's at the first size with their ratios.
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
RAW_SAMPLE = 4  # the raw encoder is timed on one text in RAW_SAMPLE (a random sample), scaled up


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _built(size: int, t0: float, index_dir: Path) -> dict[str, Any]:
    """What a build phase reports."""
    return {
        "chunks": size,
        "build_s": time.perf_counter() - t0,
        "build_rss_mb": _rss_mb(),
        "disk_mb": _disk_mb(index_dir),
    }


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


def real_articles(size: int, count_tokens: Any) -> list[Any]:
    """The real corpus of about `size` chunks (the product's chunker counts them), the same on every call."""
    from rag.config import get_settings
    from rag.ingest.chunking import chunk_articles, make_splitter
    from rag.types import Article

    spec = get_settings().index_spec
    pool, rng = paragraphs(), random.Random(size)
    splitter = make_splitter(count_tokens, spec.chunk_tokens, spec.chunk_overlap)
    articles: list[Article] = []
    chunks = 0
    while chunks < size:
        batch = [
            Article(f"a{len(articles) + i:07d}", f"خبر {len(articles) + i}", None, recombined(pool, rng), "")
            for i in range(200)
        ]
        chunks += len(chunk_articles(batch, splitter))
        articles += batch
    return articles


# ---- phases (each in its own process) ----


def machine(embedder: Any) -> dict[str, Any]:
    """The machine and the encoder set-up a row ran with: CPU model and the flags that matter, the passages'
    precision (and why), the question encoder and the threads."""
    import torch

    from rag.config import get_settings
    from rag.embed.onnx import cores
    from rag.provision.runtime import cpu_flags, cpu_model, os_grants_amx

    flags = cpu_flags()
    shown = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {
        "cpu": cpu_model(),
        "flags": [f for f in shown if f in flags],
        "amx_granted": "amx_tile" in flags and os_grants_amx(),
        "precision": embedder.choose_precision().describe(),
        "question_encoder": "ONNX Runtime" if embedder.onnx is not None else "torch",
        "query_threads": get_settings().query_threads,
        "cores": cores(),
        "torch_threads": torch.get_num_threads(),
    }


def phase_real(size: int, work: Path, raw: bool = True) -> dict[str, Any]:
    """Build the real corpus of about `size` chunks with the product, then time the raw encoder on the same texts
    (unless `raw` is False)."""
    from rag.config import get_settings
    from rag.embed.embedder import embedder_for
    from rag.index.build import index_articles, passage_texts
    from rag.index.store import load_index
    from rag.text.arabic import for_embedding

    settings = get_settings()
    embedder = embedder_for(settings)
    spec = settings.index_spec
    articles = real_articles(size, embedder.count_tokens)
    index_dir = work / f"faiss-{size}"
    shutil.rmtree(index_dir, ignore_errors=True)
    t0 = time.perf_counter()
    report = index_articles(articles, index_dir, embedder, spec, progress=True)
    build = time.perf_counter() - t0
    index = load_index(index_dir, spec)
    found = {
        "chunks": report.chunks,
        "articles": report.articles,
        "sentences": len(index.sentences),
        "chunk_vectors": spec.chunk_vectors,
        "build_s": build,
        "build_rss_mb": _rss_mb(),
        "disk_mb": _disk_mb(index_dir),
        "embed_precision": index.manifest.embed_precision,
        "machine": machine(embedder),
    }
    # The texts the build embedded: every sentence, and only the chunks without sentences when chunk vectors are
    # pooled (RAG_CHUNK_VECTORS); the chunks alone are what the LangChain peer embeds.
    embedded, _ = passage_texts(list(index.chunks), list(index.sentences), spec.chunk_vectors)
    texts = [for_embedding(t) for t in embedded]
    found |= {"passages": len(texts), "tokens": sum(embedder.count_tokens(t) for t in texts)}
    if not raw:
        return found
    chunk_texts = [for_embedding(c.text) for c in index.chunks]
    # The raw encoder on a random quarter of the same texts (the same mix of chunks and sentences, so the same
    # lengths on average), scaled to all of them: the baseline of the build's throughput, at a quarter of its cost.
    sample = random.Random(1)
    picked = sample.sample(range(len(texts)), len(texts) // RAW_SAMPLE)
    t0 = time.perf_counter()
    embedder.embed_documents([texts[i] for i in picked])
    raw_all = (time.perf_counter() - t0) * len(texts) / len(picked)
    picked_chunks = sample.sample(range(len(chunk_texts)), len(chunk_texts) // RAW_SAMPLE)
    t0 = time.perf_counter()
    embedder.embed_documents([chunk_texts[i] for i in picked_chunks])
    raw_chunks = (time.perf_counter() - t0) * len(chunk_texts) / len(picked_chunks)
    return found | {"raw_encoder_s": raw_all, "raw_encoder_chunks_only_s": raw_chunks}


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

    with VersionWriter(index_dir, spec, vecs.shape[1], settings.store_options) as writer:
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
        writer.commit([], time.perf_counter() - t0)
    return _built(size, t0, index_dir)


def phase_milvus(size: int, work: Path) -> dict[str, Any]:
    """Write the FAISS index of `size` chunks again into Milvus Lite (the same records and vectors, 64 articles at a
    time): the build time is Milvus's, the embedding having been measured in the FAISS row."""
    from dataclasses import replace

    from rag.config import get_settings
    from rag.index.store import load_index
    from rag.index.writer import VersionWriter

    settings = get_settings()
    source = load_index(work / f"faiss-{size}", settings.index_spec)
    index_dir = work / f"milvus-{size}"
    shutil.rmtree(index_dir, ignore_errors=True)
    spec = replace(settings.index_spec, store="milvus")
    t0 = time.perf_counter()
    ids = list(source.articles)
    with VersionWriter(index_dir, spec, source.manifest.dim, settings.store_options) as writer:
        for start in range(0, len(ids), 64):
            batch = [source.articles[a] for a in ids[start : start + 64]]
            parts = []
            for article in batch:
                chunks, sentences, kept = source.article_parts(article.id)
                parts.append((chunks, sentences, (kept.chunk_vectors, kept.sentence_vectors)))
            writer.add_parts(batch, parts)
        writer.commit([], time.perf_counter() - t0)
    return _built(size, t0, index_dir)


def phase_langchain(size: int, work: Path) -> dict[str, Any]:
    """The peer a user would otherwise pick: LangChain's splitter (the same tokenizer, chunk size and overlap),
    `HuggingFaceEmbeddings` with the same model folder and `FAISS.from_documents`, on the same 10k corpus; then
    `similarity_search(question, k=10)` on the same questions."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:  # the same wrapper of SentenceTransformer.encode; langchain-huggingface wants other pins
        from langchain_community.embeddings import HuggingFaceEmbeddings  # type: ignore[no-redef]

    from rag.config import get_settings
    from rag.embed.embedder import SentenceTransformerEmbedder, embedder_for

    settings = get_settings()
    ours = embedder_for(settings)
    assert isinstance(ours, SentenceTransformerEmbedder)
    articles = real_articles(size, ours.count_tokens)
    path = str(ours.path)
    spec = settings.index_spec
    t0 = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        ours.model.tokenizer, chunk_size=spec.chunk_tokens, chunk_overlap=spec.chunk_overlap
    )
    docs = splitter.split_documents([Document(a.text, metadata={"id": a.id}) for a in articles])
    embeddings = HuggingFaceEmbeddings(model_name=path, encode_kwargs={"normalize_embeddings": True})
    store = FAISS.from_documents(docs, embeddings)
    build = time.perf_counter() - t0
    store.save_local(str(work / f"langchain-{size}"))
    qs = questions()
    store.similarity_search(qs[0], k=10)
    times = []
    for q in qs:
        t = time.perf_counter()
        store.similarity_search(q, k=10)
        times.append((time.perf_counter() - t) * 1000)
    import torch

    return {
        "threads": torch.get_num_threads(),
        "chunks": len(docs),
        "passages": len(docs),
        "tokens": sum(ours.count_tokens(d.page_content) for d in docs),
        "build_s": build,
        "build_rss_mb": _rss_mb(),
        "disk_mb": _disk_mb(work / f"langchain-{size}"),
        "search_p50_ms": statistics.median(times),
        "search_p95_ms": float(np.percentile(times, 95)),
    }


def phase_search(size: int, work: Path, backend: str = "faiss") -> dict[str, Any]:
    """Load the index, time searches, measure the approximate index's recall against exact search (over the FAISS
    twin's vectors for Milvus: the same records in the same order)."""
    from dataclasses import replace

    from rag.config import get_settings
    from rag.embed.embedder import embedder_for, use_query_threads
    from rag.index.store import load_index
    from rag.index.stores.faiss import Vectors
    from rag.retrieve.retriever import retriever_for

    settings = get_settings()
    embedder = embedder_for(settings)
    index_dir = work / f"{backend}-{size}"
    spec = replace(settings.index_spec, store=backend)
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        index = load_index(index_dir, spec)
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
    twin = index if backend == "faiss" else load_index(work / f"faiss-{size}", settings.index_spec)
    v = twin.vectors
    assert isinstance(v, Vectors)
    exact = Vectors(v.chunks, v.sentences, v.offsets, None, 0)
    recall = []
    if index.manifest.store["ann"]["kind"] != "flat":
        for vector in embedder.embed_queries(qs):
            # ties count: the recombined corpus repeats chunks, so another copy of a true neighbour is one too
            tenth = float(np.asarray(v.chunks[exact.nearest(vector, 10)[-1]]) @ vector)
            pool = index.vectors.search(vector[None], 100)[0]  # the retriever proposes max(10·k, 50) per leg
            best = np.sort(np.asarray(v.chunks[pool]) @ vector)[::-1][:10]
            recall.append(float(np.sum(best >= tenth - 1e-6)) / 10)
    return {
        "load_s": statistics.median(loads),
        "search_p50_ms": statistics.median(times),
        "search_p95_ms": float(np.percentile(times, 95)),
        "recall_at_10": float(np.mean(recall)) if recall else 1.0,
        "ann": index.manifest.store["ann"],
        "search_rss_mb": search_rss,
    }


PHASES = {
    "real": phase_real,
    "derived": phase_derived,
    "search": phase_search,
    "milvus": phase_milvus,
    "langchain": phase_langchain,
}


def _run(
    phase: str, size: int, work: Path, base: Path | None = None, backend: str = "faiss", raw: bool = True
) -> dict[str, Any]:
    args = [sys.executable, __file__, "--phase", phase, "--size", str(size), "--work", str(work)]
    args += ["--backend", backend] + ([] if raw else ["--no-raw"])
    if base is not None:
        args += ["--base", str(base)]
    done = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--milvus-sizes", default="10000,100000", help="sizes also measured on Milvus Lite")
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain peer at the first size")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-scale")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-raw", action="store_true", help="skip timing the raw encoder (the build's baseline)")
    parser.add_argument("--phase", choices=sorted(PHASES))
    parser.add_argument("--size", type=int)
    parser.add_argument("--base", type=Path)
    parser.add_argument("--backend", default="faiss")
    args = parser.parse_args()
    if args.phase:
        extra = {"derived": (args.base,), "search": (args.backend,), "real": (not args.no_raw,)}.get(args.phase, ())
        print(json.dumps(PHASES[args.phase](args.size, args.work, *extra)))  # type: ignore[operator]
        return
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    base = None
    for size in sizes:
        print(f"== {size} chunks: build", file=sys.stderr, flush=True)
        if base is None:
            row = _run("real", size, args.work, raw=not args.no_raw)
            base = args.work / f"faiss-{size}"
        else:
            row = _run("derived", size, args.work, base)
        print(f"== {size} chunks: load and search", file=sys.stderr, flush=True)
        row |= _run("search", size, args.work) | {"size": size, "backend": "faiss"}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if size == sizes[0] and not args.no_langchain:
            print(f"== {size} chunks: the LangChain peer", file=sys.stderr, flush=True)
            peer = _run("langchain", size, args.work) | {"size": size, "backend": "langchain"}
            rows.append(peer)
            print(json.dumps(peer), file=sys.stderr, flush=True)
        if str(size) in args.milvus_sizes.split(","):
            print(f"== {size} chunks: Milvus Lite", file=sys.stderr, flush=True)
            mrow = _run("milvus", size, args.work)
            mrow |= _run("search", size, args.work, backend="milvus") | {"size": size, "backend": "milvus"}
            rows.append(mrow)
            print(json.dumps(mrow), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        "| chunks | backend (search) | build | vs raw encoder (same texts / chunks only) | build peak RSS | disk "
        "| load | "
        "search p50 / p95 | recall@10 vs exact | search peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(_cells(r)) + " |")
    ours = next((r for r in rows if r["backend"] == "faiss" and "machine" in r), None)
    peer = next((r for r in rows if r["backend"] == "langchain"), None)
    if ours and peer and "tokens" in ours and "tokens" in peer:
        print(
            f"\nAt {ours['size']:,} chunks: tokens embedded per second ours {ours['tokens'] / ours['build_s']:.0f}, "
            f"the LangChain peer {peer['tokens'] / peer['build_s']:.0f}; ours {ours['passages'] / ours['build_s']:.0f} "
            "passages/s "
            f"({ours['chunks'] / ours['build_s']:.1f} chunks/s; {ours['passages']:,} passages embedded for "
            f"{ours['chunks']:,} chunks and {ours['sentences']:,} sentences, chunk vectors {ours['chunk_vectors']}), "
            "the LangChain peer "
            f"{peer['passages'] / peer['build_s']:.0f} passages/s ({peer['chunks'] / peer['build_s']:.1f} chunks/s, "
            f"chunks only); build time ours / peer {ours['build_s'] / peer['build_s']:.2f}; search p50 ours / peer "
            f"{ours['search_p50_ms'] / peer['search_p50_ms']:.2f} (ours hybrid: two dense legs and BM25, exact "
            "best-sentence rescoring; the peer one dense search)"
        )
        m = ours["machine"]
        amx = ", AMX granted" if m["amx_granted"] else ""
        alone = f"{m['cores']} thread(s) when alone, one beside other work"
        threads = f"auto: {alone}" if m["query_threads"] == 0 else f"{m['query_threads']} thread(s)"
        print(
            f"\nMachine: {m['cpu']}; flags {' '.join(m['flags'])}{amx}. Passages embedded in {m['precision']}; "
            f"questions through {m['question_encoder']} on {threads} (RAG_QUERY_THREADS); the "
            f"peer's torch on {peer['threads']} thread(s) (its default).\n\n"
            f"| {ours['size']:,} chunks | build | search p50 |\n|---|---|---|\n"
            f"| ours | {ours['build_s']:.0f} s | {ours['search_p50_ms']:.1f} ms |\n"
            f"| LangChain peer | {peer['build_s']:.0f} s | {peer['search_p50_ms']:.1f} ms |\n"
            f"| ratio | {ours['build_s'] / peer['build_s']:.2f}× "
            f"| {ours['search_p50_ms'] / peer['search_p50_ms']:.2f}× |"
        )


def _cells(r: dict[str, Any]) -> list[str]:
    if r["backend"] == "langchain":
        kind, ratio = "FAISS.from_documents, flat", "chunks only"
    else:
        ann = r["ann"]
        kind = {"flat": "exact", "hnsw": f"HNSW M {ann.get('M')}"}.get(
            str(ann["kind"]), f"IVF{ann.get('nlist')},SQ8 nprobe {ann.get('nprobe')}"
        )
        ratio = (
            f"{r['raw_encoder_s'] / r['build_s']:.2f}× / {r['raw_encoder_chunks_only_s'] / r['build_s']:.2f}×"
            if "raw_encoder_s" in r
            else "not timed (--no-raw)"
            if "machine" in r
            else "vectors copied from the FAISS row"
            if r["backend"] == "milvus"
            else "derived vectors"
        )
    return [
        f"{r['size']:,}",
        f"{r['backend']} ({kind})",
        f"{r['build_s']:.0f} s",
        ratio,
        f"{r['build_rss_mb'] / 1024:.1f} GB",
        f"{r['disk_mb'] / 1024:.2f} GB",
        f"{r['load_s']:.2f} s" if "load_s" in r else "",
        f"{r['search_p50_ms']:.0f} / {r['search_p95_ms']:.0f} ms",
        f"{r['recall_at_10']:.3f}" if "recall_at_10" in r else "exact",
        f"{r['search_rss_mb'] / 1024:.1f} GB" if "search_rss_mb" in r else "",
    ]


if __name__ == "__main__":
    main()
