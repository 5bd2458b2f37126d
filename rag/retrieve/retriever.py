"""Retrieval: a question in, the best passages out."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date
from functools import partial

import numpy as np

from rag.config import Settings
from rag.embed.embedder import Embedder
from rag.errors import RagError
from rag.index.backend import Where
from rag.index.store import VectorIndex, load_index
from rag.retrieve.translate import QueryTranslator, make_translator
from rag.text.arabic import detect_language, for_embedding
from rag.types import Filter, Hit

TWIN_DENSE = 0.05  # past the k-th hit, only a candidate whose dense score is this near a kept one is read
RENDERING_RETRY = 30.0  # seconds before a question searched without its rendering (model busy) tries again


class Retriever:
    """Hybrid retrieval: dense vectors (question, and its Arabic rendering) fused with BM25 over Arabic terms.

    Each leg proposes candidates; every candidate then gets its exact dense score (min-max scaled over the
    candidates) and its BM25 score (as a share of the query's best possible score), mixed as
    (1 - w) * dense + w * lexical, where w is `lexical_weight` for an Arabic question and
    `rendered_lexical_weight` for one in another language, whose Arabic terms are the answer model's rendering
    (a machine translation's words are a weaker clue than the asker's own: measured on XQuAD, docs/figures.md
    "Retrieval, measured"). Near-duplicate chunks are collapsed (the other articles carrying one are named in the kept
    hit's `also`) and at most `per_article` chunks of one article are kept (0 = no cap). With a recency half-life (days,
    0 = off) a passage's score is halved for every half-life its article is older than the newest.
    """

    def __init__(
        self,
        index: VectorIndex,
        embedder: Embedder,
        sentence_weight: float = 0.5,
        *,
        lexical_weight: float = 0.0,
        rendered_lexical_weight: float | None = None,
        translator: QueryTranslator | None = None,
        translation_weight: float = 0.2,
        translation_min_similarity: float = 0.0,
        per_article: int = 0,
        duplicate_overlap: float = 0.8,
        recency_half_life: float = 0.0,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.sentence_weight = sentence_weight
        self.lexical_weight = lexical_weight
        self.rendered_lexical_weight = lexical_weight if rendered_lexical_weight is None else rendered_lexical_weight
        self.translator = translator
        self.translation_weight = translation_weight
        self.translation_min_similarity = translation_min_similarity
        self.per_article = per_article
        self.duplicate_overlap = duplicate_overlap
        self.recency_half_life = recency_half_life  # days; 0 = off
        self.analyzer = index.lexical.analyzer
        self.bm25 = index.lexical if max(lexical_weight, self.rendered_lexical_weight) > 0 else None
        # Per question: (kept until, rendering, query vectors); search, read and the quotes share them.
        self._queries_of: OrderedDict[str, tuple[float, str | None, tuple[tuple[np.ndarray, float], ...]]] = (
            OrderedDict()
        )
        self._queries_lock = threading.Lock()
        self._wheres: OrderedDict[Filter, Where | None] = OrderedDict()  # per filter: the chunks it keeps

    def _rendered(self, question: str) -> tuple[str | None, tuple[tuple[np.ndarray, float], ...]]:
        """The Arabic rendering kept for an English question, and the (vector, weight) of the question and of
        that rendering: one batch. A rendering too far from the question (a garbled name) is dropped.

        Kept for the next 256 questions; a question searched without its rendering because the model was busy
        is kept only for RENDERING_RETRY seconds (the same answer's steps agree, the next ask tries again)."""
        with self._queries_lock:
            kept = self._queries_of.get(question)
            if kept is not None and kept[0] > time.monotonic():
                self._queries_of.move_to_end(question)
                return kept[1], kept[2]
        rendering, queries = self._embed_queries(question)
        skipped = self.translator is not None and self.translator.skipped(question) is not None
        until = time.monotonic() + (RENDERING_RETRY if skipped else float("inf"))
        with self._queries_lock:
            self._queries_of[question] = (until, rendering, queries)
            while len(self._queries_of) > 256:
                self._queries_of.popitem(last=False)
        return rendering, queries

    def translation_skipped(self, question: str) -> str | None:
        """Why an English question was searched without its Arabic rendering (None when it was not skipped)."""
        return self.translator.skipped(question) if self.translator is not None else None

    def _embed_queries(self, question: str) -> tuple[str | None, tuple[tuple[np.ndarray, float], ...]]:
        rendering = self.translator.arabic(question) if self.translator else None
        texts = [question, rendering] if rendering else [question]
        vectors = self.embedder.embed_queries([for_embedding(t) for t in texts])
        if rendering and float(vectors[0] @ vectors[1]) < self.translation_min_similarity:
            rendering = None
        if not rendering:
            return None, ((vectors[0], 1.0),)
        return rendering, ((vectors[0], 1 - self.translation_weight), (vectors[1], self.translation_weight))

    def _queries(self, question: str) -> tuple[tuple[np.ndarray, float], ...]:
        return self._rendered(question)[1]

    def _query_vector(self, question: str) -> np.ndarray:
        return self._queries(question)[0][0]

    def query_vectors(self, question: str) -> tuple[tuple[np.ndarray, float], ...]:
        """(vector, weight) of the question and, for an English one, of its Arabic rendering."""
        return self._queries(question)

    def lexical_query(self, question: str) -> str:
        """The words the lexical leg matches: an Arabic question, or an English one with its Arabic rendering."""
        rendering = self.translation(question)
        # English words alone only match stray Latin in Arabic articles (measured: en R@1 0.793 -> 0.734).
        return f"{question} {rendering}" if rendering else question if detect_language(question) == "ar" else ""

    def translation(self, question: str) -> str | None:
        """The Arabic rendering used for an English question (None without a translator, for Arabic, or when the
        rendering was too far from the question)."""
        return self._rendered(question)[0]

    def warm_up(self) -> None:
        """Run one search (an Arabic one, so no answer model is asked) so that the first real question does not
        pay for the embedding model's first call."""
        self.search("ما الخبر؟", 1)

    def where(self, scope: Filter | None) -> Where | None:
        """The index's chunks a filter keeps (kept for the next 32 filters: the page asks with the same one)."""
        if scope is None or not scope.active:
            return None
        with self._queries_lock:
            kept = self._wheres.get(scope)
        if kept is None:
            kept = self.index.where(scope)
            with self._queries_lock:
                self._wheres[scope] = kept
                while len(self._wheres) > 32:
                    self._wheres.popitem(last=False)
        return kept

    def search(self, question: str, k: int = 5, scope: Filter | None = None) -> list[Hit]:
        """The k best passages for the question, best first; only from the articles `scope` keeps (applied
        inside both legs, before the top k is cut, so k passages come back when k exist; a filter that keeps
        nothing raises NothingMatchesError)."""
        if not question.strip():
            raise RagError("The question is empty: type a question.")
        if k < 1:
            raise RagError(f"-k must be at least 1, got {k}.")
        pool = max(10 * k, 50)
        where = self.where(scope)
        queries = self._queries(question)
        found = self.index.candidates(np.stack([v for v, _ in queries]), pool, where)
        lexical, ceiling = None, 0.0
        lexical_query = self.lexical_query(question)
        weight = self.rendered_lexical_weight if self.translation(question) else self.lexical_weight
        if self.bm25 is not None and lexical_query and weight > 0:
            lexical, ceiling = self.bm25.scores(lexical_query), self.bm25.ceiling(lexical_query)
            if where is not None:
                allowed = np.zeros(len(lexical), dtype=bool)
                allowed[where.positions] = True
                lexical = np.where(allowed, lexical, 0.0).astype(np.float32)
            top = np.argpartition(-lexical, pool - 1)[:pool] if pool < len(lexical) else np.arange(len(lexical))
            found |= {int(i) for i in top if lexical[i] > 0}
        ids = np.array(sorted(found), dtype=np.int64)
        if not len(ids):
            return []
        dense = self.index.dense_scores(queries, ids, self.sentence_weight)
        span = float(dense.max() - dense.min())
        fused = (dense - dense.min()) / span if span > 0 else np.ones_like(dense)
        lex = np.zeros_like(dense)
        if lexical is not None and ceiling > 0:
            lex = np.minimum(lexical[ids] / ceiling, 1.0)
            fused = (1 - weight) * fused + weight * lex
        if self.recency_half_life > 0:
            fused = fused * self._recency(ids)
        order = np.argsort(-fused, kind="stable")

        def hit(i: int) -> Hit:  # a chunk is read from the records only when _tidy gets to it
            chunk = self.index.chunks[int(ids[i])]
            return Hit(chunk=chunk, score=float(fused[i]), dense=float(dense[i]), lexical=float(lex[i]))

        return self._tidy(((float(dense[i]), partial(hit, int(i))) for i in order), k)

    def _recency(self, ids: np.ndarray) -> np.ndarray:
        """Per candidate chunk: 2 ** (-age / half-life), its article's age in days counted back from the index's
        newest dated article; an undated article counts as old as the oldest dated one (all 1 when none is)."""
        first, last, _ = self.index.records.dates()
        if not first or not last:
            return np.ones(len(ids), dtype=np.float32)
        newest, oldest = date.fromisoformat(last), date.fromisoformat(first)
        ages = [(newest - (date.fromisoformat(p) if p else oldest)).days for p in self.index.records.published_of(ids)]
        return np.power(0.5, np.array(ages, dtype=np.float32) / self.recency_half_life).astype(np.float32)

    def _tidy(self, candidates: Iterable[tuple[float, Callable[[], Hit]]], k: int) -> list[Hit]:
        """Best-first hits (candidates: dense score, and how to read the hit) without near-duplicates and with at
        most `per_article` chunks per article.

        A near-duplicate from another article (the same story, another outlet) is named in its kept hit's `also`;
        after the k-th hit, the next k candidates are looked at only to find such duplicates, and only those
        whose dense score is within TWIN_DENSE of a kept hit's are read (a near-copy scores nearly the same)."""
        kept: list[Hit] = []
        seen: list[frozenset[str]] = []
        also: list[list[str]] = []
        per_article: dict[str, int] = {}
        after = 0
        for score, read in candidates:
            if len(kept) == k:
                after += 1
                if after > k:
                    break
                if not any(abs(score - h.dense) <= TWIN_DENSE for h in kept):
                    continue
            hit = read()
            if self.per_article and per_article.get(hit.chunk.article_id, 0) >= self.per_article:
                continue
            grams = frozenset(self.analyzer.terms(hit.chunk.text))
            twin = next((i for i, other in enumerate(seen) if _overlap(grams, other) >= self.duplicate_overlap), None)
            if twin is not None:
                article = hit.chunk.article_id
                if article != kept[twin].chunk.article_id and article not in also[twin]:
                    also[twin].append(article)
                continue
            if len(kept) == k:
                continue
            kept.append(hit)
            seen.append(grams)
            also.append([])
            per_article[hit.chunk.article_id] = per_article.get(hit.chunk.article_id, 0) + 1
        return [replace(hit, also=tuple(more)) if more else hit for hit, more in zip(kept, also, strict=True)]

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


def load_retriever(
    settings: Settings,
    embedder: Embedder | None = None,
    translator: QueryTranslator | None = None,
    scope: Filter | None = None,
) -> Retriever:
    """The embedding model and the live index named by the settings; a filter given is checked against the index
    before the model loads (one that keeps nothing fails at once)."""
    from rag.embed.embedder import embedder_for

    index = load_index(settings.index_dir, settings.index_spec, settings.store_options)
    where = index.where(scope)
    if embedder is None:
        embedder = embedder_for(settings)
    retriever = retriever_for(index, embedder, settings, translator or make_translator(settings))
    if where is not None and scope is not None:
        retriever._wheres[scope] = where  # the filter's chunks, already found
    return retriever


def retriever_for(
    index: VectorIndex, embedder: Embedder, settings: Settings, translator: QueryTranslator | None = None
) -> Retriever:
    """A retriever over `index` with the settings' weights."""
    return Retriever(
        index,
        embedder,
        settings.sentence_weight,
        lexical_weight=settings.lexical_weight,
        rendered_lexical_weight=settings.rendered_lexical_weight,
        translator=translator,
        translation_weight=settings.translation_weight,
        translation_min_similarity=settings.translation_min_similarity,
        per_article=settings.per_article,
        recency_half_life=settings.recency_half_life_days,
    )


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard overlap of two term sets (1.0 = the same terms)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
