"""The index on disk: FAISS vectors, chunks, articles and a manifest, swapped in atomically."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from rag.files import file_sha256
from rag.index.lexical import BM25, Analyzer
from rag.index.records import Records
from rag.index.vectors import AnnParams, Vectors
from rag.types import Chunk, IndexSpec, Sentence

# 2: decimal points no longer end a sentence; 3: one sentence rule; 4: BM25 postings saved (lexical/);
# 5: vectors in memory-mapped float32 files (held once), an IVF index above ann_min_chunks, file sizes in the
#    manifest, records in SQLite read on demand, versions written batch by batch (rag/index/writer.py)
FORMAT = 5
CURRENT = "current"  # symlink to the live version folder
HASH_LIMIT = 64 * 2**20  # files above this are checked by size when loading (hashing gigabytes would take seconds)
LEXICAL = "lexical"  # the BM25 postings' folder in a version


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an index was built from and with."""

    format: int
    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    lexical_terms: str
    articles: dict[str, str]  # article id -> sha256 of its file
    chunks: int
    sentences: int
    built_at: str
    build_seconds: float
    skipped: list[dict[str, str]]
    files: dict[str, str]  # file name -> sha256, to detect corruption
    sizes: dict[str, int]  # file name -> bytes
    ann: dict[str, int | str]  # how candidates are proposed (AnnParams): flat, or IVF with its cells

    @property
    def spec(self) -> IndexSpec:
        """What the index was built with."""
        return IndexSpec(self.model, self.chunk_tokens, self.chunk_overlap, self.lexical_terms)


class VectorIndex:
    """A loaded index: its records (chunks, sentences, articles), its vectors (memory-mapped, held once) and its
    BM25 postings. Cosine = inner product on normalized vectors."""

    def __init__(self, manifest: Manifest, records: Records, vectors: Vectors, path: Path, lexical: BM25) -> None:
        self.manifest = manifest
        self.records = records
        self.chunks = records.chunks  # by position (a sequence read on demand)
        self.sentences = records.sentences  # by row, grouped by chunk
        self.articles = records.articles  # by id (a mapping read on demand)
        self.vectors = vectors
        self.path = path
        self.lexical = lexical  # BM25 over the chunks, loaded (memory-mapped) with the version

    def _position(self, chunk: Chunk) -> int:
        pos = self.records.position(chunk.id)
        if pos is None:
            raise KeyError(f"{chunk.id} is not a chunk of {self.path}")
        return pos

    def chunk(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id (as cited in a link), None when the index has none."""
        pos = self.records.position(chunk_id)
        return None if pos is None else self.chunks[pos]

    def sentences_of(self, chunk: Chunk) -> list[Sentence]:
        """The indexed sentences of a chunk (none for a one-sentence chunk)."""
        return [self.sentences[i] for i in self.vectors.members(self._position(chunk))]

    def focus_spans(self, chunk: Chunk, query: np.ndarray, n: int) -> tuple[tuple[int, int], ...]:
        """Article offsets of the n sentences of `chunk` closest to the query, in text order (n=0: none)."""
        members = np.array(self.vectors.members(self._position(chunk)), dtype=np.int64)
        if n <= 0 or len(members) == 0:
            return ()
        best = members[np.argsort(-(self.vectors.sentences[members] @ query))[:n]]
        return tuple((self.sentences[i].start, self.sentences[i].end) for i in sorted(best))

    def article_parts(self, article_id: str) -> tuple[list[Chunk], np.ndarray, list[Sentence], np.ndarray]:
        """An article's chunks and sentences (sentence.chunk counted from its first chunk) with their vectors."""
        positions = self.records.positions_of(article_id)
        chunks = [self.chunks[i] for i in positions]
        members = [m for i in positions for m in self.vectors.members(i)]
        local = {pos: n for n, pos in enumerate(positions)}
        sentences = [
            Sentence(chunk=local[self.sentences[m].chunk], start=self.sentences[m].start, end=self.sentences[m].end)
            for m in members
        ]
        dim = self.manifest.dim
        return (
            chunks,
            np.asarray(self.vectors.chunks[positions]).reshape(-1, dim),
            sentences,
            np.asarray(self.vectors.sentences[members]).reshape(-1, dim),
        )

    def units_of(self, chunk: Chunk) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
        """A chunk's sentences as article spans, with their vectors; a one-sentence chunk is its own unit."""
        pos = self._position(chunk)
        members = self.vectors.members(pos)
        spans = tuple((self.sentences[i].start, self.sentences[i].end) for i in members) or ((chunk.start, chunk.end),)
        return spans, self.vectors.units(pos)

    def best_unit_score(self, query: np.ndarray) -> float:
        """The best cosine of the query with any sentence (or one-sentence chunk) of the index (among the
        nearest chunks' for an IVF index)."""
        return self.vectors.best_unit_score(query)

    def candidates(self, query: np.ndarray, pool: int) -> set[int]:
        """Positions of the `pool` chunks nearest to the query (approximately so above ann_min_chunks).

        Sentences do not propose candidates of their own: measured on XQuAD, a sentence-level search adds no
        passage that the chunk search and BM25 do not already find (recall identical, README)."""
        return {int(i) for i in self.vectors.nearest(query, pool)}

    def dense_scores(self, query: np.ndarray, ids: np.ndarray, sentence_weight: float) -> np.ndarray:
        """Exact scores of the chunks at positions `ids` for a normalized query vector.

        A chunk scores (1 - w) * its own cosine + w * the cosine of its best sentence (w = sentence_weight):
        a long chunk whose one sentence answers the question is not drowned by the rest of it.
        """
        own, best, _ = self.vectors.scores(query, ids)
        return (1 - sentence_weight) * own + sentence_weight * best


def writer_lock_path(index_dir: Path) -> Path:
    """The lock file that admits one writer (build or update) at a time."""
    return index_dir / ".writer.lock"


@contextmanager
def writer_lock(index_dir: Path, wait: bool = False, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's writer lock (`filelock`'s flock): exclusive, released by the kernel when the holder dies.

    A second writer waits (`wait`) or gets IndexBusyError naming the holder's pid, which the holder writes into
    the lock file. Under the lock, temporary versions and switch links left by a killed writer are removed.
    """
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    path = writer_lock_path(index_dir)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise IndexBusyError(_busy_message(index_dir, _holder(path))) from None
        if on_wait:
            on_wait(f"Waiting for the build or update (pid {_holder(path)}) that is writing {index_dir}…")
        lock.acquire()
    try:
        path.write_text(str(os.getpid()))  # filelock never truncates the file, so the pid is ours to write
        _remove_leftovers(index_dir)
        yield
    finally:
        lock.release()


def _holder(path: Path) -> str:
    """The pid the lock holder wrote into the lock file."""
    try:
        return path.read_text(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


def _busy_message(index_dir: Path, holder: str) -> str:
    return (
        f"Another build or update (pid {holder}) is writing {index_dir}: wait for it to finish, "
        "or pass --wait to queue behind it."
    )


def check_not_busy(index_dir: Path) -> None:
    """Fail fast (before loading any model) when another writer holds the index; the real lock comes later."""
    from filelock import FileLock, Timeout

    path = writer_lock_path(index_dir)
    if not path.exists():
        return
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise IndexBusyError(_busy_message(index_dir, _holder(path))) from None
    lock.release()


def _remove_leftovers(index_dir: Path) -> None:
    """Temporary versions and switch links of writers that were killed (only ever called under the lock)."""
    for p in index_dir.iterdir():
        if p.name.startswith("v-") and p.name.endswith(".tmp") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{CURRENT}.") and p.is_symlink():
            p.unlink(missing_ok=True)


def live_path(index_dir: Path) -> Path:
    """The folder of the live version (resolved through the `current` symlink)."""
    return (index_dir / CURRENT).resolve()


def remove_old_versions(index_dir: Path, keep: set[str]) -> None:
    """Delete versions older than the live one and the one before it: a reader that resolved the previous
    version a moment before the switch can still finish loading it."""
    for p in index_dir.iterdir():
        if p.is_dir() and not p.is_symlink() and p.name.startswith("v-") and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


def live_version(index_dir: Path) -> str | None:
    """The name of the live version folder (changes with every build or update), None without an index."""
    try:
        return os.readlink(index_dir / CURRENT)
    except OSError:
        return None


def read_manifest(index_dir: Path) -> Manifest:
    """The live version's manifest, or an error naming the build command."""
    path = index_dir / CURRENT / "manifest.json"
    if not path.exists():
        raise IndexMissingError(f"No index in {index_dir}: {build_hint(index_dir)}.")
    return _parse_manifest(path, index_dir)


def _parse_manifest(path: Path, index_dir: Path) -> Manifest:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("format") != FORMAT:  # before its fields: they change with it
            raise IndexMismatchError(f"The index in {index_dir} has an old format: {build_hint(index_dir)}.")
        manifest = Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise IndexMismatchError(f"The index manifest {path} is corrupt: {build_hint(index_dir)}.") from exc
    return manifest


def build_hint(index_dir: Path) -> str:
    """The command that (re)builds this index."""
    option = "" if index_dir == Path("index") else f" --index {index_dir}"
    return f"run `rag index build{option}`"


def check_manifest(manifest: Manifest, index_dir: Path, spec: IndexSpec) -> None:
    """Stop when the index was built with other settings than the current ones."""
    for key, value in asdict(spec).items():
        have = getattr(manifest, key)
        if have != value:
            raise IndexMismatchError(
                f"The index in {index_dir} was built with {key}={have!r} but the settings say {value!r}: "
                f"{build_hint(index_dir)}."
            )


def load_index(index_dir: Path, spec: IndexSpec) -> VectorIndex:
    """Load the live version, verifying manifest, checksums and sizes.

    Every file is read from the one version folder `current` pointed to when loading began, so a build or
    update switching versions meanwhile never yields a mix; should that folder be removed mid-load (two
    switches in a row), loading starts again from the new live version.
    """
    for _ in range(3):
        path = live_path(index_dir)
        try:
            return _load_version(path, index_dir, spec)
        except (IndexMissingError, IndexMismatchError, OSError):
            if live_path(index_dir) == path:
                raise  # nothing switched: the version itself is broken
    return _load_version(live_path(index_dir), index_dir, spec)


def _load_version(path: Path, index_dir: Path, spec: IndexSpec) -> VectorIndex:
    hint = f"{build_hint(index_dir)}"
    if not (path / "manifest.json").exists():
        raise IndexMissingError(f"No index in {index_dir}: {hint}.")
    manifest = _parse_manifest(path / "manifest.json", index_dir)
    check_manifest(manifest, index_dir, spec)
    for name, digest in manifest.files.items():
        file = path / name
        if not file.exists():
            raise IndexMissingError(f"The index file {file} is missing: {hint}.")
        size = file.stat().st_size
        if size != manifest.sizes.get(name) or (size <= HASH_LIMIT and file_sha256(file) != digest):
            raise IndexMismatchError(f"The index file {file} is corrupt (its size or checksum differs): {hint}.")
    try:
        vectors = Vectors.load(path, AnnParams(**manifest.ann), manifest.dim)  # type: ignore[arg-type]
        records = Records(path)
        lexical = BM25.load(path / LEXICAL, Analyzer(manifest.lexical_terms))
        n = len(records.chunks)
        consistent = (
            len(vectors) == n == manifest.chunks
            and len(vectors.sentences) == len(records.spans) == int(vectors.offsets[-1]) == manifest.sentences
            and vectors.dim == vectors.sentences.shape[1] == manifest.dim
            and lexical.n == n
            and len(records.articles) == len(manifest.articles)
            and np.array_equal(records.spans[:, 0], np.repeat(np.arange(n), np.diff(vectors.offsets)))
        )
    except (RuntimeError, ValueError, TypeError, sqlite3.Error) as exc:
        raise IndexMismatchError(f"The index in {path} cannot be read ({exc}): {hint}.") from exc
    if not consistent:
        raise IndexMismatchError(f"The index in {path} does not match its chunks: {hint}.")
    return VectorIndex(manifest, records, vectors, path, lexical)
