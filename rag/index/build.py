"""Building the index: read, chunk, embed, store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag.attribute import statements as attribution
from rag.embed.embedder import Embedder, precision_of
from rag.embed.precision import combined
from rag.errors import IndexMissingError, RagError
from rag.files import file_sha256
from rag.index.backend import Kept
from rag.index.manifest import Manifest, read_manifest
from rag.index.store import load_index
from rag.index.versions import writer_lock
from rag.index.writer import VersionWriter
from rag.ingest.articles import data_files, read_folder
from rag.ingest.chunking import chunk_articles, make_splitter
from rag.text.arabic import for_embedding
from rag.text.sentences import sentence_spans
from rag.types import Article, Chunk, IndexSpec, Sentence, Skipped, Statement, StoreOptions

BATCH_ARTICLES = 64  # articles chunked and embedded together (a few hundred to a few thousand passages)


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did."""

    articles: int
    chunks: int
    skipped: tuple[Skipped, ...]
    seconds: float
    path: Path
    notices: tuple[str, ...] = ()  # metadata left out, the article indexed without it (a bad date, a bad sidecar)


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What an update did: article ids added, changed and removed; how many kept their vectors."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    chunks: int  # in the new version
    embedded: int  # passages (chunks and sentences) embedded by this update
    skipped: tuple[Skipped, ...]
    seconds: float
    path: Path | None  # the new version; None when nothing changed
    notices: tuple[str, ...] = ()  # metadata left out, the article indexed without it


@dataclass(frozen=True, slots=True)
class _Parts:
    """One article's chunks and sentences (sentence.chunk counted from the article's first chunk), and either
    their new vectors (chunk vectors, sentence vectors) or what the live version's store keeps of them."""

    chunks: list[Chunk]
    sentences: list[Sentence]
    vectors: tuple[np.ndarray, np.ndarray] | Kept
    statements: list[Statement]  # who says what in the article (rag/attribute/statements.py)


@dataclass(frozen=True, slots=True)
class _Read:
    """What a build read from the data folder: the articles, the files skipped (a build adds byte-identical
    copies), the metadata notices, and the checksums of the files read (name -> sha256)."""

    articles: list[Article]
    skipped: list[Skipped]
    notices: tuple[str, ...] = ()
    sources: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and how a build writes: the index folder, the embedder and spec, the store options, a progress bar."""

    index_dir: Path
    embedder: Embedder
    spec: IndexSpec
    options: StoreOptions | None = None
    progress: bool = False


def _readable(data_dir: Path) -> _Read:
    """The data folder's articles (byte-identical copies skipped: the first by name is kept), the skipped files,
    the metadata notices, and the checksums of the files read."""
    sources = source_checksums(data_dir)
    folder = read_folder(data_dir)
    if not folder.articles:
        reasons = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in folder.skipped) or "no article files"
        raise RagError(
            f"No readable articles in {data_dir} ({reasons}): add UTF-8 .txt, .md or .html articles, or a .jsonl "
            "feed, and build again."
        )
    first: dict[str, str] = {}
    unique = []
    for a in folder.articles:
        where = folder.sources[a.id]
        if a.sha256 in first:
            folder.skipped.append(Skipped(path=where, reason=f"same bytes as {Path(first[a.sha256]).name}"))
        else:
            first[a.sha256] = where
            unique.append(a)
    return _Read(unique, folder.skipped, tuple(folder.notices), sources)


def source_checksums(data_dir: Path) -> dict[str, str]:
    """The sha256 of every file a build reads in `data_dir` (articles, sidecars, feeds), by file name."""
    return {p.name: file_sha256(p) for p in data_files(data_dir)} if data_dir.is_dir() else {}


def build_index(
    data_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    spec: IndexSpec,
    *,
    progress: bool = False,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    options: StoreOptions | None = None,
) -> BuildReport:
    """Full rebuild of `index_dir` from the articles in `data_dir`; the old index stays live until the swap.
    One writer at a time: another build or update makes this one wait (`wait`) or fail with IndexBusyError."""
    t0 = time.perf_counter()
    read = _readable(data_dir)
    with writer_lock(index_dir, wait, on_wait):
        report = _build(read, _Target(index_dir, embedder, spec, options, progress), t0)
    return replace(report, notices=read.notices)


def index_articles(
    articles: list[Article],
    index_dir: Path,
    embedder: Embedder,
    spec: IndexSpec,
    *,
    progress: bool = False,
    options: StoreOptions | None = None,
) -> BuildReport:
    """Chunk, embed and store already-read articles (a full rebuild of `index_dir`, no data folder behind it)."""
    return _build(_Read(articles, []), _Target(index_dir, embedder, spec, options, progress), time.perf_counter())


def _build(read: _Read, target: _Target, t0: float) -> BuildReport:
    """A full rebuild from what was read; `read.sources` (the checksums of the data files) go in the manifest,
    where index_is_current compares them."""
    _check_embedder(target.embedder, target.spec)
    path, n_chunks, _ = _write(target, read, t0)
    seconds = time.perf_counter() - t0
    return BuildReport(len(read.articles), n_chunks, tuple(read.skipped), seconds, path)


def update_index(
    data_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    spec: IndexSpec,
    *,
    progress: bool = False,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    options: StoreOptions | None = None,
) -> UpdateReport:
    """Bring the index in line with `data_dir` by content hash: embed new and changed articles, drop removed
    ones, keep the vectors of unchanged ones. The result equals a full rebuild; the old version stays live
    until the switch. Without an index it builds one. One writer at a time, as for build_index."""
    t0 = time.perf_counter()
    read = _readable(data_dir)
    with writer_lock(index_dir, wait, on_wait):
        report = _update(read, _Target(index_dir, embedder, spec, options, progress), t0)
    return replace(report, notices=read.notices)


def _update(read: _Read, target: _Target, t0: float) -> UpdateReport:
    articles, skipped = read.articles, read.skipped
    _check_embedder(target.embedder, target.spec)
    try:
        old = load_index(target.index_dir, target.spec, target.options)
    except IndexMissingError:
        old = None
    before = old.articles if old else {}
    by_id = {a.id: a for a in articles}
    previous = {i: before[i] for i in by_id if i in before}
    kept = {i for i, a in previous.items() if a == by_id[i]}  # same bytes (sha256), text and metadata
    same_text = {i for i, a in previous.items() if a.text == by_id[i].text}  # its vectors can be kept
    fresh = [a for a in articles if a.id not in kept]
    added = tuple(a.id for a in fresh if a.id not in before)
    changed = tuple(a.id for a in fresh if a.id in before)
    removed = tuple(sorted(set(before) - {a.id for a in articles}))
    unchanged_files = old is not None and old.manifest.sources == read.sources
    if (
        old is not None
        and not fresh
        and not removed
        and _skip_list(skipped) == old.manifest.skipped
        and unchanged_files
        and old.manifest.statements == attribution.VERSION  # else a new version finds them (nothing embedded)
    ):
        return UpdateReport((), (), (), len(kept), len(old.chunks), 0, tuple(skipped), time.perf_counter() - t0, None)

    found_now = old is not None and old.manifest.statements == attribution.VERSION

    def reuse(article_id: str) -> _Parts | None:
        """The live version's parts of an article whose text is unchanged (its metadata may have changed); its
        statements too, when they were found by these rules in an article of the same language."""
        if old is None or article_id not in same_text:
            return None
        article = by_id[article_id]
        same = found_now and before[article_id].language == article.language
        statements = old.records.statements_of(article_id) if same else attribution.extract(article)
        return _Parts(*old.article_parts(article_id), statements)

    live = old.manifest if old is not None else None
    path, n_chunks, embedded = _write(target, read, t0, reuse, live)
    return UpdateReport(
        added, changed, removed, len(kept), n_chunks, embedded, tuple(skipped), time.perf_counter() - t0, path
    )


def _check_embedder(embedder: Embedder, spec: IndexSpec) -> None:
    if embedder.name != spec.model:
        raise RagError(
            f"The index is to be built with {spec.model!r} but the embedder given is {embedder.name!r}: "
            "build with the embedder of RAG_EMBEDDING_MODEL (embedder_for(settings))."
        )


def _embed(articles: list[Article], embedder: Embedder, spec: IndexSpec) -> tuple[dict[str, _Parts], int]:
    """Chunk the articles and embed what `spec.chunk_vectors` asks for in one call (sentence-transformers sorts the
    texts by length into its batches, so mixing long chunks and short sentences costs no padding); grouped per
    article, and how many texts were embedded."""
    splitter = make_splitter(embedder.count_tokens, spec.chunk_tokens, spec.chunk_overlap)
    chunks = chunk_articles(articles, splitter)
    sentences = split_sentences(chunks)
    chunk_vecs, sentence_vecs, embedded = embed_passages(chunks, sentences, embedder, spec.chunk_vectors)
    dim = embedder.dim
    by_article: dict[str, list[int]] = {a.id: [] for a in articles}
    for i, c in enumerate(chunks):
        by_article[c.article_id].append(i)
    of_chunk: dict[int, list[int]] = {}
    for j, s in enumerate(sentences):
        of_chunk.setdefault(s.chunk, []).append(j)
    parts: dict[str, _Parts] = {}
    for a in articles:
        positions = by_article[a.id]
        members = [(n, j) for n, pos in enumerate(positions) for j in of_chunk.get(pos, [])]
        parts[a.id] = _Parts(
            [chunks[i] for i in positions],
            [Sentence(n, sentences[j].start, sentences[j].end) for n, j in members],
            (chunk_vecs[positions].reshape(-1, dim), sentence_vecs[[j for _, j in members]].reshape(-1, dim)),
            attribution.extract(a),
        )
    return parts, embedded


def passage_texts(chunks: list[Chunk], sentences: list[Sentence], chunk_vectors: str) -> tuple[list[str], list[int]]:
    """The texts a build embeds for these chunks and sentences (before `for_embedding`), and the chunks whose own
    texts come first among them: every chunk (`own`) or only those without sentences (`pooled`); then every
    sentence."""
    with_sentences = {s.chunk for s in sentences} if chunk_vectors == "pooled" else set()
    embedded = [i for i in range(len(chunks)) if i not in with_sentences]
    texts = [chunks[i].text for i in embedded]
    texts += [chunks[s.chunk].text[s.start - chunks[s.chunk].start : s.end - chunks[s.chunk].start] for s in sentences]
    return texts, embedded


def embed_passages(
    chunks: list[Chunk], sentences: list[Sentence], embedder: Embedder, chunk_vectors: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Chunk vectors and sentence vectors (unit length), and how many texts were embedded. With `own` (the
    default), every chunk is embedded as well as its sentences. With `pooled`, a chunk with sentences is not
    embedded: its vector is the mean of its sentences' vectors weighted by their tokens, renormalized, and a
    one-sentence chunk is embedded itself: about half a build's embedding, for XQuAD R@1 Arabic 0.939 vs 0.937 but
    English 0.819 vs 0.834 (docs/figures.md, "Retrieval, measured")."""
    dim = embedder.dim
    texts, embedded = passage_texts(chunks, sentences, chunk_vectors)
    if not texts:
        return np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32), 0
    vectors = np.asarray(embedder.embed_documents([for_embedding(t) for t in texts]), dtype=np.float32)
    sentence_vecs = vectors[len(embedded) :]
    if chunk_vectors != "pooled":
        return vectors[: len(embedded)], sentence_vecs, len(texts)
    chunk_vecs = np.zeros((len(chunks), dim), np.float32)
    chunk_vecs[embedded] = vectors[: len(embedded)]
    weights = np.array([embedder.count_tokens(t) for t in texts[len(embedded) :]], np.float32)
    owners = np.array([s.chunk for s in sentences], np.int64)
    np.add.at(chunk_vecs, owners, sentence_vecs * np.maximum(weights, 1.0)[:, None])
    pooled = np.unique(owners)
    chunk_vecs[pooled] /= np.maximum(np.linalg.norm(chunk_vecs[pooled], axis=1, keepdims=True), 1e-12)
    return chunk_vecs, sentence_vecs, len(texts)


def _write(
    target: _Target,
    read: _Read,
    t0: float,
    reuse: Callable[[str], _Parts | None] = lambda _: None,
    live: Manifest | None = None,
) -> tuple[Path, int, int]:
    """Write a version batch by batch, in article order: an article's parts are reused when `reuse` has them,
    else embedded. Memory holds one batch of vectors at a time. The version, its chunks, passages embedded."""
    from tqdm import tqdm

    articles, embedder = read.articles, target.embedder
    embedded, reused = 0, 0
    with (
        VersionWriter(target.index_dir, target.spec, embedder.dim, target.options, live) as writer,
        tqdm(total=len(articles), unit="article", disable=not target.progress, smoothing=0.1) as bar,
    ):
        for start in range(0, len(articles), BATCH_ARTICLES):
            batch = articles[start : start + BATCH_ARTICLES]
            parts = {a.id: p for a in batch if (p := reuse(a.id)) is not None}
            fresh, count = _embed([a for a in batch if a.id not in parts], embedder, target.spec)
            embedded, reused = embedded + count, reused + len(parts)
            parts |= fresh
            writer.add_parts(
                batch,
                [(parts[a.id].chunks, parts[a.id].sentences, parts[a.id].vectors) for a in batch],
                [s for a in batch for s in parts[a.id].statements],
            )
            bar.update(len(batch))
            bar.set_postfix_str(f"{embedded / max(bar.format_dict['elapsed'], 1e-9):.0f} passages/s embedded")
        kept = live.embed_precision if live is not None and reused else ""
        precision = combined(kept, precision_of(embedder) if embedded else "")
        path = writer.commit(_skip_list(read.skipped), time.perf_counter() - t0, read.sources, precision)
    return path, writer.chunks, embedded


def _skip_list(skipped: list[Skipped]) -> list[dict[str, str]]:
    return [{"path": s.path, "reason": s.reason} for s in skipped]


def split_sentences(chunks: list[Chunk]) -> list[Sentence]:
    """The sentences of every chunk, with offsets in their article; a one-sentence chunk gets none."""
    sentences = []
    for i, chunk in enumerate(chunks):
        spans = sentence_spans(chunk.text)
        if len(spans) > 1:
            sentences += [Sentence(chunk=i, start=chunk.start + a, end=chunk.start + b) for a, b in spans]
    return sentences


def index_is_current(data_dir: Path, index_dir: Path, spec: IndexSpec) -> bool:
    """True when the live index was built from exactly these files with this spec."""
    try:
        m = read_manifest(index_dir)
    except RagError:
        return False
    return m.spec == spec and m.sources == source_checksums(data_dir) and m.statements == attribution.VERSION
