"""Retrieval: a question in, the best passages out."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import Settings
from .embedding import Embedder
from .errors import RagError
from .normalize import for_embedding
from .store import VectorIndex, load_index
from .types import Hit


class Retriever:
    """Dense retrieval over a loaded index."""

    def __init__(self, index: VectorIndex, embedder: Embedder, sentence_weight: float = 0.5) -> None:
        self.index = index
        self.embedder = embedder
        self.sentence_weight = sentence_weight

    @lru_cache(maxsize=64)  # noqa: B019 - one retriever per process; search and passages share the vector
    def _query_vector(self, question: str) -> np.ndarray:
        return self.embedder.embed_query(for_embedding(question))

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The k passages most similar to the question, best first."""
        if not question.strip():
            raise RagError("The question is empty: type a question.")
        if k < 1:
            raise RagError(f"-k must be at least 1, got {k}.")
        return self.index.search(self._query_vector(question), k, self.sentence_weight)

    def read(
        self, question: str, hits: list[Hit], sentences: int
    ) -> tuple[list[str], list[tuple[tuple[int, int], ...]]]:
        """What the answer model reads of each hit, and where that is in the article.

        Per hit: its `sentences` sentences closest to the question (joined by " … ") with their article
        offsets, or the whole chunk when it has no more sentences than that or `sentences` is 0.
        """
        texts, spans_per_hit = [], []
        for hit in hits:
            spans = self.index.focus_spans(hit.chunk, self._query_vector(question), sentences)
            text = self.index.articles[hit.chunk.article_id].text
            whole = not spans or len(spans) == len(self.index.sentences_of(hit.chunk))
            texts.append(hit.chunk.text if whole else " … ".join(text[a:b] for a, b in spans))
            spans_per_hit.append(spans)
        return texts, spans_per_hit


def load_retriever(settings: Settings, embedder: Embedder | None = None) -> Retriever:
    """The embedding model and the live index named by the settings."""
    from .embedding import SentenceTransformerEmbedder

    index = load_index(
        settings.index_dir,
        model=settings.embedding_model,
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
    )
    if embedder is None:
        embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.models_dir, settings.embed_batch_size)
    return Retriever(index, embedder, settings.sentence_weight)
