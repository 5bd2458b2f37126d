"""The vector store interface: what the retriever, the builder and the verifier ask of wherever the vectors live,
and what the registry (`rag/index/stores/__init__.py`) asks of each backend (`Backend`: open, writer, retire,
describe).

Ids are the version's chunk positions (what `Records.chunks[i]` reads). Each backend maps them to its own
storage: FAISS to the rows of the version's own files (the same numbers), Milvus to rows with stable integer keys
that survive `rag index update`, so that an update inserts and deletes only what changed.

A question asks the store once per leg: `nearest` proposes candidates (with an optional filter applied inside the
search), `fetch` returns every candidate's chunk vector and sentence vectors in one call, and `Fetched.scores`
gives each candidate's chunk cosine and best-sentence cosine for any number of query vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.types import StoreOptions

OFFSETS = "sentence_offsets.npy"  # int64, n_chunks + 1: the sentences of chunk i are rows offsets[i]:offsets[i + 1]


@dataclass(frozen=True, slots=True)
class Where:
    """A filter applied inside the search, before the top k is cut: only chunks of these articles."""

    articles: tuple[str, ...]
    positions: np.ndarray  # int64, sorted: the chunks of those articles in this version


@dataclass(frozen=True, slots=True)
class Fetched:
    """Vectors of some chunks: one row per chunk, and their sentences grouped by chunk in the same order."""

    chunk_vectors: np.ndarray  # (n, dim)
    sentence_vectors: np.ndarray  # (counts.sum(), dim)
    counts: np.ndarray  # sentences per chunk (0 for a one-sentence chunk)

    def scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per chunk: its cosine with the query, the cosine of its best sentence (its own for a one-sentence
        chunk), and which of its sentences that is (-1 for a one-sentence chunk)."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        own = (self.chunk_vectors @ q).astype(np.float32) if len(self.chunk_vectors) else np.zeros(0, np.float32)
        best, which = own.copy(), np.full(len(own), -1, dtype=np.int64)
        has = np.flatnonzero(self.counts > 0)
        if len(has):
            cos = (self.sentence_vectors @ q).astype(np.float32)
            starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])[has]
            best[has] = np.maximum.reduceat(cos, starts)
            segment = np.repeat(np.arange(len(has)), self.counts[has])
            # the first sentence reaching its chunk's best: the lowest index among the maxima of each segment
            hit = np.flatnonzero(cos == best[has][segment])
            first = np.full(len(has), len(cos), dtype=np.int64)
            np.minimum.at(first, segment[hit], hit)
            which[has] = first - starts
        return own, best, which


@dataclass(frozen=True, slots=True)
class Kept:
    """Chunks of an older version that a new version reuses: their sentence counts, and what the backend that
    holds them needs to carry them over (its own record: FAISS their vectors, Milvus their keys)."""

    counts: np.ndarray  # sentences per chunk
    held: object


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A version folder and its manifest's `store` section (the kind and that backend's own parameters)."""

    folder: Path
    section: Mapping[str, Any]


class VectorStore(Protocol):
    """The vectors of one loaded index version."""

    offsets: np.ndarray  # int64 (chunks + 1): the sentences of chunk i are rows offsets[i]:offsets[i + 1]

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, where: Where | None = None) -> list[np.ndarray]:
        """Per normalized query vector (rows of `queries`): ids of (about) the k chunks closest to it, best first;
        only `where`'s chunks if given. One call for the question and its rendering."""
        ...

    def fetch(self, ids: np.ndarray) -> Fetched:
        """The chunk and sentence vectors of chunks `ids`, in one call."""
        ...

    def units(self, chunk: int) -> np.ndarray:
        """A chunk's sentence vectors, or its own vector (one row) for a one-sentence chunk."""
        ...

    def best_unit_score(self, query: np.ndarray) -> float:
        """The best cosine of the query with any sentence or one-sentence chunk (among the nearest chunks' for an
        approximate or remote store)."""
        ...

    def keep(self, ids: np.ndarray) -> Kept:
        """What a writer needs to carry chunks `ids` over into a new version."""
        ...


class VectorStoreWriter(Protocol):
    """Fills a new version's vector store batch by batch, in chunk order."""

    n: int  # chunks so far

    def add(
        self,
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
        sentence_chunks: np.ndarray,
        chunk_articles: list[str],
    ) -> None:
        """New chunks, their articles and their sentences (`sentence_chunks`: each sentence's chunk within the
        batch, grouped, in chunk order)."""
        ...

    def add_kept(self, kept: Kept) -> None:
        """Chunks carried over from an older version."""
        ...

    def close(self) -> tuple[list[str], dict[str, Any]]:
        """Finish; the files written into the version folder and the parameters of the manifest's `store` section
        (the registry adds the kind)."""
        ...

    def switched(self) -> None:
        """The version is now the live one (Milvus: the aliases follow it)."""
        ...

    def discard(self) -> None:
        """The version is abandoned: remove what was written outside its folder."""
        ...


class Backend(Protocol):
    """One kind of vector store, as the registry knows it: a module under `rag/index/stores/` with a `BACKEND`."""

    kind: str

    def writer(
        self, folder: Path, dim: int, options: StoreOptions, live: Mapping[str, Any] | None
    ) -> VectorStoreWriter:
        """A writer filling the new version in `folder` (`live`: the live version's `store` section when it is of
        this kind, for an update that writes into the same place)."""
        ...

    def open(self, version: StoredVersion, dim: int, options: StoreOptions) -> VectorStore:
        """The version's store, its own files checked (ValueError or RuntimeError saying what does not match)."""
        ...

    def retire(
        self, index_dir: Path, retired: list[StoredVersion], kept: list[StoredVersion], options: StoreOptions
    ) -> None:
        """Remove what only the retired versions of this kind used outside their folders (their folders go after)."""
        ...

    def describe(self, section: Mapping[str, Any], index_dir: Path) -> dict[str, Any]:
        """How a version of this kind is searched, from its `store` section (`search`, and what `rag index info`
        shows besides)."""
        ...


def unit_floor(fetched: Fetched, query: np.ndarray) -> float:
    """The best sentence (or one-sentence chunk) cosine among fetched chunks: -1 for none."""
    best = fetched.scores(query)[1]
    return float(best.max()) if len(best) else -1.0


def sentence_counts(sentence_chunks: np.ndarray, n_chunks: int) -> np.ndarray:
    """Sentences per chunk of a batch, from each sentence's chunk (which must be grouped, in chunk order)."""
    order = np.asarray(sentence_chunks, dtype=np.int64)
    if len(order) and (np.any(np.diff(order) < 0) or order[0] < 0 or order[-1] >= n_chunks):
        raise ValueError("sentence rows must be grouped by chunk, in chunk order")
    return np.bincount(order, minlength=n_chunks).astype(np.int64)


def write_offsets(folder: Path, counts: list[np.ndarray]) -> str:
    """Write where each chunk's sentences start (from the batches' per-chunk counts); the file's name. Every
    backend writes them: the records and the loader read them."""
    flat = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(flat) + 1, dtype=np.int64)
    np.cumsum(flat, out=offsets[1:])
    np.save(folder / OFFSETS, offsets)
    return OFFSETS
