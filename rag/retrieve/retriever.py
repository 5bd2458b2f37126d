"""Retrieval: a question in, the best passages out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from rag.config import Settings
from rag.embed.embedder import Embedder
from rag.errors import RagError
from rag.index.backend import Where
from rag.index.store import VectorIndex, load_index
from rag.retrieve.translate import QueryTranslator, Rendering, make_translator
from rag.text.arabic import detect_language, for_embedding
from rag.types import Chunk, Filter, Hit, Query

TWIN_DENSE = 0.05  # past the k-th hit, only a candidate whose dense score is this near a kept one is read
# Chunks are compared term by term only when their vectors are this close: among 60,720 pairs of neighbouring chunks
# (scripts/bench_scale.py's 2,000-chunk corpus, 30 nearest each), those sharing >= 80% of their terms had cosine
# >= 0.897, and chunks with a tenth of their words dropped >= 0.947.
TWIN_COSINE = 0.85


@dataclass(frozen=True, slots=True)
class _Ranked:
    """A search's candidates, best first: positions, fused, dense and lexical scores, chunk vectors."""

    ids: np.ndarray
    fused: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    vectors: np.ndarray

    def hit(self, row: int, chunk: Chunk) -> Hit:
        return Hit(chunk=chunk, score=float(self.fused[row]), dense=float(self.dense[row]),
                   lexical=float(self.lexical[row]))  # fmt: skip


class _Reader:
    """The candidates' chunks, read from the records in blocks (the first `block` at once, the rest as reached)."""

    def __init__(self, index: VectorIndex, ids: np.ndarray, block: int) -> None:
        self.index, self.ids, self.block = index, ids, max(block, 1)
        self.read: dict[int, Chunk] = {}

    def __getitem__(self, row: int) -> Chunk:
        if row not in self.read:
            start = row - row % self.block
            rows = range(start, min(start + self.block, len(self.ids)))
            self.read |= dict(zip(rows, self.index.chunks.many([int(self.ids[r]) for r in rows]), strict=True))
        return self.read[row]


@dataclass(frozen=True, slots=True)
class RetrievalWeights:
    """How the retriever mixes and tidies its legs (the settings' retrieval group, `RetrievalWeights.of`).

    `rendered_lexical_weight` None = the same as `lexical_weight`; `recency_half_life` in days, 0 = off;
    `per_article` 0 = no cap."""

    sentence_weight: float = 0.5
    lexical_weight: float = 0.0
    rendered_lexical_weight: float | None = None
    translation_weight: float = 0.2
    translation_min_similarity: float = 0.0
    per_article: int = 0
    duplicate_overlap: float = 0.8
    recency_half_life: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> RetrievalWeights:
        return cls(
            sentence_weight=settings.sentence_weight,
            lexical_weight=settings.lexical_weight,
            rendered_lexical_weight=settings.rendered_lexical_weight,
            translation_weight=settings.translation_weight,
            translation_min_similarity=settings.translation_min_similarity,
            per_article=settings.per_article,
            recency_half_life=settings.recency_half_life_days,
        )

    @property
    def rendered_lexical(self) -> float:
        """The BM25 weight for a question searched with its rendering's Arabic words."""
        return self.lexical_weight if self.rendered_lexical_weight is None else self.rendered_lexical_weight


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
        weights: RetrievalWeights | None = None,
        translator: QueryTranslator | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.weights = w = weights or RetrievalWeights()
        self.translator = translator
        self.analyzer = index.lexical.analyzer
        self.bm25 = index.lexical if max(w.lexical_weight, w.rendered_lexical) > 0 else None
        self._lock = threading.Lock()
        self._wheres: OrderedDict[Filter, Where | None] = OrderedDict()  # per filter: the chunks it keeps

    def query(self, question: str, scope: Filter | None = None) -> Query:
        """The question as every step of one answer reads it: its Arabic rendering for an English question (or
        why it has none), the (vector, weight) of the question and of that rendering (one batch), the words the
        lexical leg matches, and the filter. A rendering too far from the question (a garbled name) is dropped."""
        question = question.strip()
        if not question:
            raise RagError("The question is empty: type a question.")
        rendered = self.translator.render(question) if self.translator is not None else Rendering()
        rendering = rendered.arabic
        texts = [question, rendering] if rendering else [question]
        vectors = self.embedder.embed_queries([for_embedding(t) for t in texts])
        if rendering and float(vectors[0] @ vectors[1]) < self.weights.translation_min_similarity:
            rendering = None
        w = self.weights.translation_weight
        queries = ((vectors[0], 1 - w), (vectors[1], w)) if rendering else ((vectors[0], 1.0),)
        language = detect_language(question)
        # English words alone only match stray Latin in Arabic articles (measured: en R@1 0.793 -> 0.734).
        lexical = f"{question} {rendering}" if rendering else question if language == "ar" else ""
        return Query(question, language, queries, rendering, rendered.skipped, lexical, scope)

    def warm_up(self) -> None:
        """Run one search (an Arabic one, so no answer model is asked) so that the first real question does not
        pay for the embedding model's first call."""
        self.search("ما الخبر؟", 1)

    def where(self, scope: Filter | None) -> Where | None:
        """The index's chunks a filter keeps (kept for the next 32 filters: the page asks with the same one)."""
        if scope is None or not scope.active:
            return None
        with self._lock:
            kept = self._wheres.get(scope)
        if kept is None:
            kept = self.index.where(scope)
            with self._lock:
                self._wheres[scope] = kept
                while len(self._wheres) > 32:
                    self._wheres.popitem(last=False)
        return kept

    def search(self, query: Query | str, k: int = 5, scope: Filter | None = None) -> list[Hit]:
        """The k best passages for the query, best first; only from the articles its scope keeps (applied
        inside both legs, before the top k is cut, so k passages come back when k exist; a filter that keeps
        nothing raises NothingMatchesError). A question given as text is made a Query first (with `scope`)."""
        if k < 1:
            raise RagError(f"-k must be at least 1, got {k}.")
        q = query if isinstance(query, Query) else self.query(query, scope)
        pool = max(10 * k, 50)
        where = self.where(q.scope)
        found = self.index.candidates(np.stack([v for v, _ in q.vectors]), pool, where)
        lexical, ceiling = None, 0.0
        weight = self.weights.rendered_lexical if q.rendering else self.weights.lexical_weight
        if self.bm25 is not None and q.lexical and weight > 0:
            lexical, ceiling = self.bm25.scores(q.lexical), self.bm25.ceiling(q.lexical)
            if where is not None:
                allowed = np.zeros(len(lexical), dtype=bool)
                allowed[where.positions] = True
                lexical = np.where(allowed, lexical, 0.0).astype(np.float32)
            top = np.argpartition(-lexical, pool - 1)[:pool] if pool < len(lexical) else np.arange(len(lexical))
            found |= {int(i) for i in top if lexical[i] > 0}
        ids = np.array(sorted(found), dtype=np.int64)
        if not len(ids):
            return []
        dense, vectors = self.index.scored(q.vectors, ids, self.weights.sentence_weight)
        span = float(dense.max() - dense.min())
        fused = (dense - dense.min()) / span if span > 0 else np.ones_like(dense)
        lex = np.zeros_like(dense)
        if lexical is not None and ceiling > 0:
            lex = np.minimum(lexical[ids] / ceiling, 1.0)
            fused = (1 - weight) * fused + weight * lex
        if self.weights.recency_half_life > 0:
            fused = fused * self._recency(ids)
        order = np.argsort(-fused, kind="stable")
        ranked = _Ranked(ids[order], fused[order], dense[order], lex[order], vectors[order])
        return self._tidy(ranked, k)

    def _recency(self, ids: np.ndarray) -> np.ndarray:
        """Per candidate chunk: 2 ** (-age / half-life), its article's age in days counted back from the index's
        newest dated article; an undated article counts as old as the oldest dated one (all 1 when none is)."""
        first, last, _ = self.index.records.dates()
        if not first or not last:
            return np.ones(len(ids), dtype=np.float32)
        newest, oldest = date.fromisoformat(last), date.fromisoformat(first)
        ages = [(newest - (date.fromisoformat(p) if p else oldest)).days for p in self.index.records.published_of(ids)]
        return np.power(0.5, np.array(ages, dtype=np.float32) / self.weights.recency_half_life).astype(np.float32)

    def _tidy(self, ranked: _Ranked, k: int) -> list[Hit]:
        """The best-first candidates as hits, without near-duplicates and with at most `per_article` chunks per
        article.

        A near-duplicate from another article (the same story, another outlet) is named in its kept hit's `also`;
        after the k-th hit, the next k candidates are looked at only to find such duplicates, and only those
        whose dense score is within TWIN_DENSE of a kept hit's are read (a near-copy scores nearly the same).
        Two chunks are compared by their terms (Jaccard >= `duplicate_overlap`) only when their chunk vectors are
        within TWIN_COSINE (a near-copy's vector is nearly the same), so a candidate far from every kept hit is never
        split into terms; the chunks are read from the records a block at a time, not one query per hit."""
        kept: list[Hit] = []
        rows: list[int] = []  # each kept hit's row in `ranked`
        also: list[list[str]] = []
        per_article: dict[str, int] = {}
        grams: dict[int, frozenset[int] | frozenset[str]] = {}  # by row: term ids, or terms in older versions
        chunks = _Reader(self.index, ranked.ids, 2 * k)

        def terms(row: int) -> frozenset[int] | frozenset[str]:
            if row not in grams:
                kept_terms = self.index.lexical.term_set(int(ranked.ids[row]))
                grams[row] = frozenset(self.analyzer.terms(chunks[row].text)) if kept_terms is None else kept_terms
            return grams[row]

        after = 0
        for row in range(len(ranked.ids)):
            if len(kept) == k:
                after += 1
                if after > k:
                    break
                if not any(abs(float(ranked.dense[row]) - h.dense) <= TWIN_DENSE for h in kept):
                    continue
            chunk = chunks[row]
            if self.weights.per_article and per_article.get(chunk.article_id, 0) >= self.weights.per_article:
                continue
            near = ranked.vectors[rows] @ ranked.vectors[row] if rows else np.zeros(0, np.float32)
            twin = next(
                (
                    i
                    for i in np.flatnonzero(near >= TWIN_COSINE)
                    if _overlaps(terms(row), terms(rows[i]), self.weights.duplicate_overlap)
                ),
                None,
            )
            if twin is not None:
                article = chunk.article_id
                if article != kept[twin].chunk.article_id and article not in also[twin]:
                    also[twin].append(article)
                continue
            if len(kept) == k:
                continue
            kept.append(ranked.hit(row, chunk))
            rows.append(row)
            also.append([])
            per_article[chunk.article_id] = per_article.get(chunk.article_id, 0) + 1
        return [replace(hit, also=tuple(more)) if more else hit for hit, more in zip(kept, also, strict=True)]

    def read(
        self, query: Query, hits: list[Hit], sentences: int
    ) -> tuple[list[str], list[tuple[tuple[int, int], ...]]]:
        """What the answer model reads of each hit, and where that is in the article.

        Per hit: its `sentences` sentences closest to the question (joined by " … ") with their article
        offsets, or the whole chunk when it has no more sentences than that or `sentences` is 0.
        """
        texts, spans_per_hit = [], []
        for hit in hits:
            spans = self.index.focus_spans(hit.chunk, query.vector, sentences)
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
    return Retriever(index, embedder, RetrievalWeights.of(settings), translator)


def _overlaps(a: frozenset[int] | frozenset[str], b: frozenset[int] | frozenset[str], least: float) -> bool:
    """Whether two term sets overlap by at least `least` (Jaccard; no overlap when either is empty). Sets whose sizes
    differ more than that cannot, and are not intersected: |a & b| / |a | b| <= min(|a|, |b|) / max(|a|, |b|)."""
    if not a or not b or min(len(a), len(b)) / max(len(a), len(b)) < least:
        return False
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared) >= least
