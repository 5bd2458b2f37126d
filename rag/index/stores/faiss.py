"""The FAISS store (the default, `RAG_VECTOR_STORE=faiss`): the vectors of one index version, held once: chunk
and sentence vectors as memory-mapped float32 files, and for large indexes an IVF index (FAISS, 8-bit codes,
memory-mapped) that proposes candidates.

Search has two steps. `nearest` proposes chunk ids: exact (one product with every chunk vector) below
`ann_min_chunks`, approximate (IVF) above. `scores` then gives the candidates their exact chunk and best-sentence
cosines from the full-precision vectors, so the approximation only decides which chunks are looked at, never
how they rank. Only the pages of the vectors a question touches are read from disk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rag.files import RowReader, mapped_rows
from rag.index.backend import OFFSETS, Fetched, Kept, StoredVersion, Where, sentence_counts, unit_floor, write_offsets
from rag.types import StoreOptions

CHUNKS = "chunk_vectors.f32"  # raw float32, one row per chunk, normalized (appended batch by batch)
SENTENCES = "sentence_vectors.f32"  # raw float32, one row per sentence, grouped by chunk in chunk order
ANN = "ann.faiss"  # only above ann_min_chunks
ANN_MIN_CHUNKS = 100_000  # below this an exact search costs under ~20 ms on 2 cores (make bench-scale)
EXACT_SUBSET = 200_000  # a filter's chunks up to this many are searched exactly (about 10 ms on 2 cores)
TRAIN_PER_LIST = 64  # k-means training points per inverted list (FAISS warns below 39)


@dataclass(frozen=True, slots=True)
class AnnParams:
    """How the candidates are proposed: "flat" (exact) or "ivf" (FAISS IVF with 8-bit scalar codes)."""

    kind: str = "flat"
    nlist: int = 0  # inverted lists (k-means cells)
    nprobe: int = 0  # cells visited per search
    trained_on: int = 0  # vectors the cells were trained on


def ann_params_for(n_chunks: int, ann_min_chunks: int = ANN_MIN_CHUNKS) -> AnnParams:
    """Flat below `ann_min_chunks`; above, about 4·√n cells (a power of two) of which a quarter are visited.

    Measured with make bench-scale at 1M chunks (IVF4096,SQ8; recall@10 of the exact top 10 among the 100
    candidates, ranked exactly): 1/16 of the cells 0.971, 1/8 0.993, 1/4 0.9995 at 14 ms a search; at 100k
    (IVF1024) 1/4 recalls 0.985."""
    if n_chunks < max(ann_min_chunks, 1):
        return AnnParams()
    nlist = 2 ** round(math.log2(4 * math.sqrt(n_chunks)))
    nlist = max(1, min(nlist, n_chunks // 39))  # k-means wants at least 39 points per cell
    return AnnParams("ivf", nlist, max(1, nlist // 4), min(n_chunks, TRAIN_PER_LIST * nlist))


class VectorWriter:
    """Appends a version's vectors batch by batch (bounded memory: nothing is kept but the per-chunk sentence
    counts), then writes the offsets and, above ann_min_chunks, the IVF index (`VectorStoreWriter`)."""

    def __init__(self, folder: Path, dim: int, ann_min_chunks: int = ANN_MIN_CHUNKS, ann: AnnParams | None = None):
        self.folder = folder
        self.dim = dim
        self.ann_min_chunks = ann_min_chunks
        self.ann = ann  # None: chosen by size when closing
        self._chunks = (folder / CHUNKS).open("wb")
        self._sentences = (folder / SENTENCES).open("wb")
        self._counts: list[np.ndarray] = []
        self.n = 0

    def add(
        self,
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
        sentence_chunks: np.ndarray,
        chunk_articles: list[str] | None = None,
    ) -> None:
        """A batch of chunks and their sentences; `sentence_chunks` = each sentence's chunk within the batch,
        in chunk order (the chunks' articles are known to the records)."""
        chunk_vectors = np.ascontiguousarray(chunk_vectors, dtype=np.float32).reshape(-1, self.dim)
        self._write(chunk_vectors, sentence_vectors, sentence_counts(sentence_chunks, len(chunk_vectors)))

    def add_kept(self, kept: Kept) -> None:
        """Chunks of an older version: their vectors are copied."""
        if not isinstance(kept.held, Fetched):
            raise TypeError(f"FAISS carries over chunks kept by a FAISS store, not {type(kept.held).__name__}")
        self._write(kept.held.chunk_vectors, kept.held.sentence_vectors, kept.counts)

    def _write(self, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, counts: np.ndarray) -> None:
        self._chunks.write(np.ascontiguousarray(chunk_vectors, dtype=np.float32).reshape(-1, self.dim).tobytes())
        self._sentences.write(np.ascontiguousarray(sentence_vectors, dtype=np.float32).reshape(-1, self.dim).tobytes())
        self._counts.append(np.asarray(counts, dtype=np.int64))
        self.n += len(counts)

    def close(self) -> tuple[list[str], dict[str, Any]]:
        """Finish the files; the names of the files written and the manifest's `ann`."""
        self._chunks.close()
        self._sentences.close()
        names = [CHUNKS, SENTENCES, write_offsets(self.folder, self._counts)]
        ann = self.ann or ann_params_for(self.n, self.ann_min_chunks)
        if ann.kind == "ivf":
            faiss.write_index(
                train_ivf(mapped_rows(self.folder / CHUNKS, np.float32, self.dim), ann), str(self.folder / ANN)
            )
            names.append(ANN)
        return names, {"ann": asdict(ann)}

    def switched(self) -> None:
        """Nothing to do once the version is live."""

    def discard(self) -> None:
        """Nothing lives outside the version folder."""
        self._chunks.close()
        self._sentences.close()


def write_vectors(
    folder: Path,
    chunk_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    sentence_chunks: np.ndarray,
    ann: AnnParams,
) -> list[str]:
    """Write the vectors of a version in one batch (sentence rows in chunk order); the names of the files."""
    writer = VectorWriter(folder, int(chunk_vectors.shape[1]), ann=ann)
    try:
        writer.add(chunk_vectors, sentence_vectors, sentence_chunks)
    finally:
        names, _ = writer.close()
    return names


def train_ivf(vectors: np.ndarray, ann: AnnParams, batch: int = 65_536) -> faiss.Index:
    """An IVF index over `vectors` (a memory map is fine: it is read in batches), ids = row numbers."""
    n, dim = vectors.shape
    index = faiss.index_factory(dim, f"IVF{ann.nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    sample = np.sort(np.random.default_rng(0).choice(n, size=ann.trained_on, replace=False))
    index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    for start in range(0, n, batch):
        rows = np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32)
        index.add_with_ids(rows, np.arange(start, start + len(rows), dtype=np.int64))
    return index


class Vectors:
    """The FAISS store (`VectorStore`): chunk and sentence vectors of a version (memory-mapped), and the IVF index
    when there is one."""

    def __init__(
        self, chunks: np.ndarray, sentences: np.ndarray, offsets: np.ndarray, ann: faiss.Index | None, nprobe: int
    ) -> None:
        self.chunks = chunks
        self.sentences = sentences
        self.offsets = offsets
        self.ann = ann
        self.nprobe = nprobe
        if ann is not None:
            faiss.extract_index_ivf(ann).nprobe = nprobe
        self._singles: np.ndarray | None = None
        self._readers: tuple[RowReader, RowReader] | None = None  # pread of candidates' rows (files only)

    @classmethod
    def load(cls, folder: Path, ann: AnnParams, dim: int) -> Vectors:
        """Map the version's vectors; the IVF lists too (IO_FLAG_MMAP), so loading reads almost nothing."""
        index = faiss.read_index(str(folder / ANN), faiss.IO_FLAG_MMAP) if ann.kind == "ivf" else None
        # an exact search reads every chunk vector in order; an IVF search and the scoring read rows here and there
        chunks = mapped_rows(folder / CHUNKS, np.float32, dim, random=index is not None)
        sentences = mapped_rows(folder / SENTENCES, np.float32, dim, random=True)
        vectors = cls(chunks, sentences, np.load(folder / OFFSETS), index, ann.nprobe)
        vectors._readers = (RowReader(folder / CHUNKS, np.float32, dim), RowReader(folder / SENTENCES, np.float32, dim))
        return vectors

    @property
    def dim(self) -> int:
        return int(self.chunks.shape[1])

    def __len__(self) -> int:
        return int(self.chunks.shape[0])

    def nearest(self, query: np.ndarray, k: int, where: Where | None = None) -> np.ndarray:
        """Ids of (about, above ann_min_chunks) the k chunks closest to a normalized query; only `where`'s chunks
        if given (exact among them up to EXACT_SUBSET chunks, else the IVF index with an id selector)."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        among = where.positions if where is not None else None
        k = min(k, len(self) if among is None else len(among))
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        if self.ann is not None and (among is None or len(among) > EXACT_SUBSET):
            params = faiss.SearchParametersIVF()
            params.nprobe = self.nprobe
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64)) if among is not None else None
            if selector is not None:
                params.sel = selector  # kept alive by `selector` until the search returns
            _, ids = self.ann.search(q, k, params=params)
            return ids[0][ids[0] >= 0]
        rows = self.chunks if among is None else self.chunks[among]
        scores = rows @ q[0]
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")].astype(np.int64)
        return top if among is None else np.asarray(among, dtype=np.int64)[top]

    def search(self, queries: np.ndarray, k: int, where: Where | None = None) -> list[np.ndarray]:
        """`nearest` for each query vector."""
        return [self.nearest(q, k, where) for q in np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)]

    def fetch(self, ids: np.ndarray) -> Fetched:
        """The vectors of chunks `ids`: read with pread from the files (not through the memory maps, so the pages
        read are not counted in this process's resident size), or from the arrays given."""
        ids = np.asarray(ids, dtype=np.int64)
        lo, hi = self.offsets[ids], self.offsets[ids + 1]
        if self._readers is not None:
            chunk_rows = self._readers[0].ranges(ids, ids + 1)
            sentence_rows = self._readers[1].ranges(lo, hi)
        else:
            rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(ids) else lo
            chunk_rows, sentence_rows = np.asarray(self.chunks[ids]), np.asarray(self.sentences[rows])
        return Fetched(
            chunk_rows.reshape(-1, self.dim),
            sentence_rows.reshape(-1, self.dim),
            (hi - lo).astype(np.int64),
        )

    def scores(self, query: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact scores of chunks `ids`: their cosines, the cosine of each one's best sentence (its own cosine
        for a one-sentence chunk) and that sentence's row (-1 for a one-sentence chunk)."""
        ids = np.asarray(ids, dtype=np.int64)
        own, best, which = self.fetch(ids).scores(query)
        return own, best, np.where(which >= 0, self.offsets[ids] + which, -1)

    def keep(self, ids: np.ndarray) -> Kept:
        """The vectors of chunks `ids`, for a new version that reuses them."""
        fetched = self.fetch(ids)
        return Kept(fetched.counts, fetched)

    def units(self, chunk: int) -> np.ndarray:
        """A chunk's sentence vectors, or its own vector (one row) for a one-sentence chunk."""
        a, b = int(self.offsets[chunk]), int(self.offsets[chunk + 1])
        return np.asarray(self.sentences[a:b] if b > a else self.chunks[chunk : chunk + 1])

    def best_unit_score(self, query: np.ndarray, pool: int = 100) -> float:
        """The best cosine of the query with any sentence or one-sentence chunk: exact for a flat index, among
        the sentences of the `pool` nearest chunks for an IVF one (scanning millions of sentences per claim
        would cost seconds)."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if not len(self):
            return 0.0
        if self.ann is not None:
            return unit_floor(self.fetch(self.nearest(q, pool)), q)
        if self._singles is None:
            self._singles = np.flatnonzero(np.diff(self.offsets) == 0)
        best = float((self.sentences @ q).max()) if len(self.sentences) else -1.0
        if len(self._singles):
            best = max(best, float((self.chunks[self._singles] @ q).max()))
        return best


class FaissBackend:
    """The registry's FAISS entry: files in the version folder, nothing outside it."""

    kind = "faiss"

    def writer(self, folder: Path, dim: int, options: StoreOptions, live: Mapping[str, Any] | None) -> VectorWriter:
        return VectorWriter(folder, dim, int(options.get("ann_min_chunks", ANN_MIN_CHUNKS)))

    def open(self, version: StoredVersion, dim: int, options: StoreOptions) -> Vectors:
        vectors = Vectors.load(version.folder, AnnParams(**version.section["ann"]), dim)
        if vectors.sentences.shape[0] != int(vectors.offsets[-1]) or len(vectors.offsets) != len(vectors) + 1:
            raise ValueError(f"its vector files ({CHUNKS}, {SENTENCES}) do not match {OFFSETS}")
        return vectors

    def retire(
        self, index_dir: Path, retired: list[StoredVersion], kept: list[StoredVersion], options: StoreOptions
    ) -> None:
        """Nothing lives outside the version folders."""

    def describe(self, section: Mapping[str, Any], index_dir: Path) -> dict[str, Any]:
        ann = section["ann"]
        if ann["kind"] == "flat":
            return {"search": "exact"}
        return {"search": f"IVF{ann['nlist']},SQ8 (nprobe {ann['nprobe']})"}


BACKEND = FaissBackend()
