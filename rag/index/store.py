"""A loaded index version: its records, its vector store and its BM25 postings, and the loader that checks a
version before anyone reads it.

The on-disk format and its checks are in `manifest.py`, the writer lock and version switching in `versions.py`,
the vector stores behind `backend.VectorStore` in `stores/` (one module per kind, chosen by the registry in
`stores/__init__.py` from the manifest's `store` section).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError, NothingMatchesError, RagError
from rag.files import file_sha256
from rag.index.backend import StoredVersion, VectorStore, Where
from rag.index.lexical import BM25, Analyzer
from rag.index.manifest import Manifest, build_hint, check_manifest, parse_manifest
from rag.index.records import Records
from rag.index.stores import backend, kinds
from rag.index.versions import RETIRED, live_path, old_versions
from rag.types import Chunk, Filter, IndexSpec, Sentence, StoreOptions

HASH_LIMIT = 64 * 2**20  # files above this are checked by size when loading (hashing gigabytes would take seconds)
LEXICAL = "lexical"  # the BM25 postings' folder in a version


class VectorIndex:
    """A loaded index version: its records (chunks, sentences, articles), its vector store and its BM25 postings.
    Chunk ids are positions in the version's records. Cosine = inner product on normalized vectors."""

    def __init__(self, manifest: Manifest, records: Records, vectors: VectorStore, path: Path, lexical: BM25) -> None:
        self.manifest = manifest
        self.records = records
        self.chunks = records.chunks  # by position (a sequence read on demand)
        self.sentences = records.sentences  # by row, grouped by chunk
        self.articles = records.articles  # by id (a mapping read on demand)
        self.vectors = vectors
        self.path = path
        self.lexical = lexical  # BM25 over the chunks, loaded (memory-mapped) with the version

    def count(self) -> int:
        """Chunks in the index."""
        return len(self.vectors)

    def _position(self, chunk: Chunk) -> int:
        pos = self.records.position(chunk.id)
        if pos is None:
            raise KeyError(f"{chunk.id} is not a chunk of {self.path}")
        return pos

    def _members(self, position: int) -> range:
        offsets = self.vectors.offsets
        return range(int(offsets[position]), int(offsets[position + 1]))

    def chunk(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id (as cited in a link), None when the index has none."""
        pos = self.records.position(chunk_id)
        return None if pos is None else self.chunks[pos]

    def chunk_at(self, article_id: str, start: int, end: int) -> Chunk | None:
        """The chunk of an article that holds most of the span (a sentence), None when the article has none."""
        chunks = [self.chunks[pos] for pos in self.records.positions_of(article_id)]
        return max(chunks, key=lambda c: min(c.end, end) - max(c.start, start), default=None)

    def where(self, scope: Filter | None) -> Where | None:
        """The chunks a filter keeps (None: no filter), found before either leg searches.

        An article id or outlet the index does not hold, and a filter that keeps no article, are errors that say
        what the index holds (a filter matching nothing is never an empty success)."""
        if scope is None or not scope.active:
            return None
        missing = [a for a in scope.articles if a not in self.articles]
        if missing:
            raise NothingMatchesError(f"No article {missing[0]!r} in the index: `rag index info` lists what it holds.")
        known = {name.casefold(): name for name in self.records.outlets()}
        unknown = [o for o in scope.outlets if o.casefold() not in known]
        if unknown:
            raise NothingMatchesError(f"No outlet {unknown[0]!r} in the index: {self._holdings()}.")
        stored = tuple(dict.fromkeys(known[o.casefold()] for o in scope.outlets))
        ids, positions = self.records.matching(replace(scope, outlets=stored))
        if not ids:
            raise NothingMatchesError(f"No article matches the filter ({scope.describe()}): {self._holdings()}.")
        return Where(ids, positions)

    def _holdings(self) -> str:
        """What a filter can choose from: the outlets with their article counts, and the dates."""
        counts = ", ".join(f"{name} ({n})" for name, n in self.records.outlets().items())
        outlets = f"its outlets are {counts}" if counts else "no article names its outlet"
        first, last, undated = self.records.dates()
        dates = f"published {first} to {last}" if first else "no article is dated"
        if first and undated:
            dates += f", {undated} undated (outside any date range)"
        return f"{outlets}; {dates}"

    def sentences_of(self, chunk: Chunk) -> list[Sentence]:
        """The indexed sentences of a chunk (none for a one-sentence chunk)."""
        return [self.sentences[i] for i in self._members(self._position(chunk))]

    def focus_spans(self, chunk: Chunk, query: np.ndarray, n: int) -> tuple[tuple[int, int], ...]:
        """Article offsets of the n sentences of `chunk` closest to the query, in text order (n=0: none)."""
        members = self._members(self._position(chunk))
        if n <= 0 or len(members) == 0:
            return ()
        vectors = self.vectors.units(self._position(chunk))
        best = np.sort(np.argsort(-(vectors @ query))[:n])
        return tuple((self.sentences[members[i]].start, self.sentences[members[i]].end) for i in best)

    def article_parts(self, article_id: str) -> tuple[list[Chunk], list[Sentence], Any]:
        """An article's chunks and sentences (sentence.chunk counted from its first chunk) and what a writer
        needs to carry their vectors into a new version (`backend.Kept`)."""
        positions = self.records.positions_of(article_id)
        chunks = [self.chunks[i] for i in positions]
        local = {pos: n for n, pos in enumerate(positions)}
        sentences = [
            Sentence(chunk=local[s.chunk], start=s.start, end=s.end)
            for s in (self.sentences[m] for i in positions for m in self._members(i))
        ]
        return chunks, sentences, self.vectors.keep(np.array(positions, dtype=np.int64))

    def units_of(self, chunk: Chunk) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
        """A chunk's sentences as article spans, with their vectors; a one-sentence chunk is its own unit."""
        pos = self._position(chunk)
        spans = tuple((self.sentences[i].start, self.sentences[i].end) for i in self._members(pos))
        return spans or ((chunk.start, chunk.end),), self.vectors.units(pos)

    def best_unit_score(self, query: np.ndarray) -> float:
        """The best cosine of the query with any sentence (or one-sentence chunk) of the index (among the
        nearest chunks' for an IVF or Milvus index)."""
        return self.vectors.best_unit_score(query)

    def candidates(self, queries: np.ndarray, pool: int, where: Where | None = None) -> set[int]:
        """Positions of the `pool` chunks nearest to each query vector (approximately so for IVF and Milvus), in
        one call to the store.

        Sentences do not propose candidates of their own: measured on XQuAD, a sentence-level search adds no
        passage that the chunk search and BM25 do not already find (recall identical, docs/figures.md)."""
        return {int(i) for ids in self.vectors.search(queries, pool, where) for i in ids}

    def dense_scores(
        self, queries: Sequence[tuple[np.ndarray, float]], ids: np.ndarray, sentence_weight: float
    ) -> np.ndarray:
        """Exact dense scores of the chunks at positions `ids` for weighted query vectors (one fetch from the
        store; IndexChangedError when a retired Milvus version's rows are gone).

        A chunk scores (1 - w) * its own cosine + w * the cosine of its best sentence (w = sentence_weight):
        a long chunk whose one sentence answers the question is not drowned by the rest of it.
        """
        return self.scored(queries, ids, sentence_weight)[0]

    def scored(
        self, queries: Sequence[tuple[np.ndarray, float]], ids: np.ndarray, sentence_weight: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """`dense_scores`, and the chunks' own vectors (n, dim) from the same fetch: every query vector against
        every candidate's chunk and sentence vectors in one product each (vectorised over the candidates)."""
        fetched = self.vectors.fetch(ids)
        total = np.zeros(len(ids), dtype=np.float32)
        for vector, weight in queries:
            own, best, _ = fetched.scores(vector)
            total += weight * ((1 - sentence_weight) * own + sentence_weight * best)
        return total, fetched.chunk_vectors


def load_index(index_dir: Path, spec: IndexSpec, options: StoreOptions | None = None) -> VectorIndex:
    """Load the live version, verifying manifest, checksums and sizes.

    Every file is read from the one version folder `current` pointed to when loading began, so a build or
    update switching versions meanwhile never yields a mix; should that folder be removed mid-load (two
    switches in a row), loading starts again from the new live version.
    """
    options = options or StoreOptions()
    for _ in range(3):
        path = live_path(index_dir)
        try:
            return _load_version(path, index_dir, spec, options)
        except (IndexMissingError, IndexMismatchError, OSError):
            if live_path(index_dir) == path:
                raise  # nothing switched: the version itself is broken
    return _load_version(live_path(index_dir), index_dir, spec, options)


def _load_version(path: Path, index_dir: Path, spec: IndexSpec, options: StoreOptions) -> VectorIndex:
    hint = f"{build_hint(index_dir)}"
    if not (path / "manifest.json").exists():
        raise IndexMissingError(f"No index in {index_dir}: {hint}.")
    manifest = parse_manifest(path / "manifest.json", index_dir)
    check_manifest(manifest, index_dir, spec)
    for name, digest in manifest.files.items():
        file = path / name
        if not file.exists():
            raise IndexMissingError(f"The index file {file} is missing: {hint}.")
        size = file.stat().st_size
        if size != manifest.sizes.get(name) or (size <= HASH_LIMIT and file_sha256(file) != digest):
            raise IndexMismatchError(f"The index file {file} is corrupt (its size or checksum differs): {hint}.")
    try:
        vectors = backend(manifest.kind).open(StoredVersion(path, manifest.store), manifest.dim, options)
        records = Records(path)
        lexical = BM25.load(path / LEXICAL, Analyzer(manifest.lexical_terms))
        n = len(records.chunks)
        offsets = vectors.offsets
        consistent = (
            len(vectors) == n == manifest.chunks
            and len(records.spans) == int(offsets[-1]) == manifest.sentences
            and vectors.dim == manifest.dim
            and lexical.n == n
            and len(records.articles) == len(manifest.articles)
            and np.array_equal(records.spans[:, 0], np.repeat(np.arange(n), np.diff(offsets)))
        )
    except (RuntimeError, ValueError, TypeError, sqlite3.Error) as exc:
        raise IndexMismatchError(f"The index in {path} cannot be read ({exc}): {hint}.") from exc
    if not consistent:
        raise IndexMismatchError(f"The index in {path} does not match its chunks: {hint}.")
    return VectorIndex(manifest, records, vectors, path, lexical)


def holdings(index_dir: Path) -> dict[str, Any]:
    """What the live version's articles are: outlets with their article counts, and the publication dates
    (`rag index info`), read from its records without loading the index."""
    records = Records(live_path(index_dir))
    first, last, undated = records.dates()
    return {"outlets": records.outlets(), "published": {"first": first, "last": last, "undated": undated}}


def index_info(index_dir: Path) -> dict[str, Any]:
    """What the live index holds (`rag index info`, the API's /v1/index): counts, model, build time, store,
    outlets and dates, and the live version's name."""
    from rag.index.manifest import read_manifest
    from rag.index.versions import live_version

    m = read_manifest(index_dir)
    info: dict[str, Any] = {
        "articles": len(m.articles),
        "chunks": m.chunks,
        "sentences": m.sentences,
        "model": m.model,
        "dim": m.dim,
        "precision": m.embed_precision,
        "built_at": m.built_at,
        "store": m.kind,
        **backend(m.kind).describe(m.store, index_dir),
    }
    return info | holdings(index_dir) | {"version": live_version(index_dir)}


def retire_versions(index_dir: Path, keep: set[str], options: StoreOptions) -> None:
    """Remove the versions not in `keep` (the live one and the one before it: a reader that resolved the previous
    version a moment before the switch can still finish loading it), and what only they used outside their folders
    (each kind's backend decides: Milvus rows and collections, also those of builds killed before their switch).
    Each is renamed `<name>.retired` before anything of it is deleted (a killed writer's leftover is finished by the
    next one)."""
    retired = []
    for p in old_versions(index_dir, keep):  # renamed first: a Milvus reader of it sees it gone before its rows go
        retired.append(p if p.name.endswith(RETIRED) else p.rename(p.with_name(p.name + RETIRED)))
    by_kind: dict[str, tuple[list[StoredVersion], list[StoredVersion]]] = {}
    for group, folders in ((0, retired), (1, [index_dir / name for name in sorted(keep) if name])):
        for folder in folders:
            version = _stored(folder)
            if version is not None:
                by_kind.setdefault(str(version.section["kind"]), ([], []))[group].append(version)
    for kind, (gone, kept) in by_kind.items():
        if kind in kinds():  # a version of a kind no longer installed leaves nothing we could remove
            backend(kind).retire(index_dir, gone, kept, options)
    for p in retired:
        shutil.rmtree(p, ignore_errors=True)


def _stored(version: Path) -> StoredVersion | None:
    """A version folder with its manifest's store section (None when it cannot be read)."""
    try:
        return StoredVersion(version, parse_manifest(version / "manifest.json", version.parent).store)
    except (RagError, OSError):
        return None
