"""Building the index: read, chunk, embed, store."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from .articles import read_articles
from .chunking import chunk_articles, make_splitter, sentence_spans
from .embedding import Embedder
from .errors import RagError
from .normalize import for_embedding
from .store import read_manifest, save_index
from .types import Article, Chunk, Sentence, Skipped


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did."""

    articles: int
    chunks: int
    skipped: tuple[Skipped, ...]
    seconds: float
    path: Path


def build_index(
    data_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    progress: bool = False,
) -> BuildReport:
    """Full rebuild of `index_dir` from the articles in `data_dir`; the old index stays live until the swap."""
    t0 = time.perf_counter()
    articles, skipped = read_articles(data_dir)
    if not articles:
        reasons = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped) or "no .txt files"
        raise RagError(f"No readable articles in {data_dir} ({reasons}): add UTF-8 .txt files and build again.")
    return index_articles(
        articles,
        index_dir,
        embedder,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        progress=progress,
        skipped=skipped,
        t0=t0,
    )


def index_articles(
    articles: list[Article],
    index_dir: Path,
    embedder: Embedder,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    progress: bool = False,
    skipped: list[Skipped] | None = None,
    t0: float | None = None,
) -> BuildReport:
    """Chunk, embed and store already-read articles (a full rebuild of `index_dir`)."""
    t0 = time.perf_counter() if t0 is None else t0
    skipped = skipped or []
    splitter = make_splitter(embedder.count_tokens, chunk_tokens, chunk_overlap)
    chunks = chunk_articles(articles, splitter)
    sentences = split_sentences(chunks)
    texts = [c.text for c in chunks] + [
        chunks[s.chunk].text[s.start - chunks[s.chunk].start : s.end - chunks[s.chunk].start] for s in sentences
    ]
    vectors = embedder.embed_documents([for_embedding(t) for t in texts], progress=progress)
    seconds = time.perf_counter() - t0
    path = save_index(
        index_dir,
        articles,
        chunks,
        vectors[: len(chunks)],
        sentences,
        vectors[len(chunks) :],
        model=embedder.name,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        skipped=[{"path": s.path, "reason": s.reason} for s in skipped],
        build_seconds=seconds,
    )
    return BuildReport(articles=len(articles), chunks=len(chunks), skipped=tuple(skipped), seconds=seconds, path=path)


def split_sentences(chunks: list[Chunk]) -> list[Sentence]:
    """The sentences of every chunk, with offsets in their article; a one-sentence chunk gets none."""
    sentences = []
    for i, chunk in enumerate(chunks):
        spans = sentence_spans(chunk.text)
        if len(spans) > 1:
            sentences += [Sentence(chunk=i, start=chunk.start + a, end=chunk.start + b) for a, b in spans]
    return sentences


def index_is_current(data_dir: Path, index_dir: Path, *, model: str, chunk_tokens: int, chunk_overlap: int) -> bool:
    """True when the live index was built from exactly these files with these settings."""
    try:
        m = read_manifest(index_dir)
    except RagError:
        return False
    if (m.model, m.chunk_tokens, m.chunk_overlap) != (model, chunk_tokens, chunk_overlap):
        return False
    files = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_dir.glob("*.txt"))}
    skipped = {Path(s["path"]).stem for s in m.skipped}
    return {k: v for k, v in files.items() if k not in skipped} == m.articles and skipped <= set(files)
