"""The vector store interface: what the retriever, the builder and the verifier ask of wherever the vectors live.

Ids are the version's chunk positions (what `Records.chunks[i]` reads). Each backend maps them to its own
storage: FAISS to the rows of the version's own files (the same numbers), Milvus to rows with stable integer keys
that survive `rag index update`, so that an update inserts and deletes only what changed.

A question asks the store once per leg: `nearest` proposes candidates (with an optional filter applied inside the
search), `fetch` returns every candidate's chunk vector and sentence vectors in one call, and `Fetched.scores`
gives each candidate's chunk cosine and best-sentence cosine for any number of query vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


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
    """Chunks of an older version that a new version reuses: what its writer needs to carry them over (FAISS:
    their vectors, copied into the new files; Milvus: their keys, the rows stay where they are)."""

    counts: np.ndarray  # sentences per chunk
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: np.ndarray | None = None
    keys: np.ndarray | None = None


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

    def describe(self) -> dict[str, Any]:
        """How this store is searched (for `rag index info`)."""
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
        """Finish; the files written into the version folder and what the manifest records about the store."""
        ...

    def switched(self) -> None:
        """The version is now the live one (Milvus: the aliases follow it)."""
        ...

    def discard(self) -> None:
        """The version is abandoned: remove what was written outside its folder."""
        ...


def unit_floor(fetched: Fetched, query: np.ndarray) -> float:
    """The best sentence (or one-sentence chunk) cosine among fetched chunks: -1 for none."""
    best = fetched.scores(query)[1]
    return float(best.max()) if len(best) else -1.0
