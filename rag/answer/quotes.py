"""Key quotes: the sentences of the retrieved passages that answer the question, as the articles say them.

Every sentence of the passages is a candidate (a sentence cut by a chunk boundary is completed from the article;
the same sentence reached through two overlapping chunks counts once). A candidate's signals:
    dense      the cosine of the question with the sentence (and, for an English question, of its Arabic
               rendering, weighted as in retrieval),
    lexical    the share of the question's terms (folded Arabic 4-grams, idf-weighted; a term no passage holds
               weighs most) that the sentence holds,
    passage    the fused retrieval score of the best passage it belongs to,
    before / after   the dense score of the sentence just before / after it (an answer often sits next to the
               sentence that names the topic),
    number     1 when the question asks for a number or a date (how many, when, كم, متى ...) and the sentence
               writes one,
    words      the sentence's length, log(words),
mixed linearly with weights fitted on XQuAD by a conditional logit (scripts/fit_quotes.py; docs/key-quotes.md).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from rag.index.lexical import BM25
from rag.index.store import VectorIndex
from rag.text.arabic import ascii_digits
from rag.text.sentences import article_sentences
from rag.types import Chunk, Hit, KeyQuote, Query

Span = tuple[int, int]
SIGNALS = ("dense", "lexical", "passage", "before", "after", "number", "words")

# Questions that ask for a number or a date, in English and Arabic.
_ASKS_NUMBER = re.compile(
    r"\b(how (many|much|long|old|far|often)|when|what (year|date|percentage|age)|which (year|date)|in what year)\b"
    r"|(^|\s)(كم|متى|بكم)(\s|$)|(أي|اي) (عام|سنة|تاريخ)",
    re.IGNORECASE,
)
MONTHS = re.compile(
    r"يناير|فبراير|مارس|أبريل|ابريل|مايو|يونيو|يوليو|أغسطس|اغسطس|سبتمبر|أكتوبر|اكتوبر|نوفمبر|ديسمبر|"
    r"كانون|شباط|آذار|نيسان|أيار|حزيران|تموز|آب|أيلول|تشرين"
)


@dataclass(frozen=True, slots=True)
class QuoteWeights:
    """How the signals mix into a key quote's score (fitted on XQuAD by scripts/fit_quotes.py)."""

    dense: float = 1.0
    lexical: float = 0.3
    passage: float = 0.1
    before: float = 0.0
    after: float = 0.0
    number: float = 0.0
    words: float = 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence of a retrieved passage with its signals (before they are mixed)."""

    n: int  # number of the best passage holding it (1-based, as cited)
    chunk: Chunk
    start: int  # article offsets of the whole sentence
    end: int
    dense: float
    lexical: float = 0.0
    passage: float = 0.0
    before: float = 0.0
    after: float = 0.0
    number: float = 0.0
    words: float = 0.0

    def signals(self) -> list[float]:
        """The signals in SIGNALS order."""
        return [getattr(self, k) for k in SIGNALS]

    def score(self, w: QuoteWeights) -> float:
        """The mixed score."""
        return sum(getattr(w, k) * getattr(self, k) for k in SIGNALS)


class QuotePicker:
    """Scores the sentences of retrieved passages against a question (see the module docstring).

    It reads the index's sentences and vectors, and the idf of `lexical` (the retriever's BM25 leg; None when
    retrieval is dense only, and then no lexical signal); the question's vectors, rendering and lexical words come
    with its Query.
    """

    def __init__(self, index: VectorIndex, lexical: BM25 | None = None, weights: QuoteWeights | None = None) -> None:
        self.index = index
        self.bm25 = lexical
        self.analyzer = index.lexical.analyzer
        self.weights = weights or QuoteWeights()
        self._sentences = lru_cache(maxsize=512)(self._article_sentences)

    def _article_sentences(self, article_id: str) -> tuple[tuple[int, ...], tuple[Span, ...]]:
        """The article's sentences (start offsets, spans): a chunk's cut sentence is completed from these."""
        spans = article_sentences(self.index.articles[article_id].text)
        return tuple(a for a, _ in spans), spans

    def _whole(self, article_id: str, span: Span) -> Span:
        """The article sentence holding `span` (the span itself when no sentence holds it)."""
        starts, spans = self._sentences(article_id)
        i = bisect_right(starts, span[0]) - 1
        if i >= 0 and spans[i][0] <= span[0] < spans[i][1]:
            return min(spans[i][0], span[0]), max(spans[i][1], span[1])
        return span

    def candidates(self, query: Query, hits: Sequence[Hit]) -> list[Candidate]:
        """Every sentence of the hits with its signals, in order of first appearance."""
        terms = self._query_terms(query)
        asks_number = bool(_ASKS_NUMBER.search(query.text) or _ASKS_NUMBER.search(query.rendering or ""))
        found: dict[tuple[str, Span], Candidate] = {}
        for n, hit in enumerate(hits, 1):
            spans, vectors = self.index.units_of(hit.chunk)
            dense = np.zeros(len(spans), dtype=np.float32)
            for vector, weight in query.vectors:
                dense += weight * (vectors @ vector)
            for span, d in zip(spans, dense, strict=True):
                whole = self._whole(hit.chunk.article_id, span)
                key = (hit.chunk.article_id, whole)
                old = found.get(key)
                if old is None:
                    found[key] = Candidate(n, hit.chunk, whole[0], whole[1], float(d), passage=hit.score)
                elif d > old.dense:  # a fuller copy of the sentence in another chunk: keep the better reading
                    found[key] = replace(old, dense=float(d))
        out = []
        for (aid, (a, b)), c in found.items():
            text = self.index.articles[aid].text[a:b]
            out.append(
                replace(
                    c,
                    lexical=self._coverage(terms, text),
                    number=float(asks_number and writes_number(text)),
                    words=math.log(1 + len(text.split())),
                )
            )
        return _with_neighbours(out)

    def _query_terms(self, query: Query) -> dict[str, float]:
        """The question's lexical terms (with its Arabic rendering) and their idf; empty without a lexical leg."""
        if self.bm25 is None or not query.lexical:
            return {}
        return {t: self.bm25.idf(t) for t in set(self.analyzer.terms(query.lexical))}

    def coverage_of(self, query: Query) -> Callable[[str], float]:
        """The share of the question's terms (idf-weighted) a text holds, as a function of the text."""
        terms = self._query_terms(query)
        return lambda text: self._coverage(terms, text)

    def _coverage(self, terms: dict[str, float], text: str) -> float:
        """Share of the question terms' idf weight that the text holds (a term no passage holds weighs most: a
        question about something the articles never name stays low)."""
        total = sum(terms.values())
        if total <= 0:
            return 0.0
        held = set(self.analyzer.terms(text))
        return sum(w for t, w in terms.items() if t in held) / total

    def pick(self, query: Query, hits: Sequence[Hit], count: int = 3) -> list[KeyQuote]:
        """The `count` best key quotes, best first: each is its best sentence and, as context, the adjacent
        sentence that scores higher (measured on XQuAD: the answer is often the next or previous sentence);
        a sentence already inside a better quote does not start another."""
        cands = self.candidates(query, hits)
        scores = [c.score(self.weights) for c in cands]
        quotes: list[KeyQuote] = []
        for i in sorted(range(len(cands)), key=lambda i: -scores[i]):
            c = cands[i]
            if any(q.chunk.article_id == c.chunk.article_id and q.start <= c.start and c.end <= q.end for q in quotes):
                continue
            quotes.append(self._quote(cands, scores, i))
            if len(quotes) == count:
                break
        return quotes

    def _quote(self, cands: list[Candidate], scores: list[float], i: int) -> KeyQuote:
        """Candidate i as a key quote, with its better adjacent candidate sentence as context."""
        c = cands[i]
        text = self.index.articles[c.chunk.article_id].text
        adjacent = [
            j
            for j, o in enumerate(cands)
            if o.chunk.article_id == c.chunk.article_id
            and j != i
            and (
                (o.start >= c.end and not text[c.end : o.start].strip())
                or (o.end <= c.start and not text[o.end : c.start].strip())
            )
        ]
        start, end = c.start, c.end
        if adjacent:
            j = max(adjacent, key=lambda j: scores[j])
            start, end = min(start, cands[j].start), max(end, cands[j].end)
        return KeyQuote(
            n=c.n,
            chunk=c.chunk,
            start=start,
            end=end,
            text=text[start:end].strip(),
            score=round(scores[i], 4),
            focus=(c.start, c.end),
        )


def writes_number(text: str) -> bool:
    """True when the text writes a number (digits in any script) or a month."""
    return bool(re.search(r"\d", ascii_digits(text)) or MONTHS.search(text))


def _with_neighbours(candidates: list[Candidate]) -> list[Candidate]:
    """Each candidate with the dense scores of the candidate sentences just before and after it in its article."""
    by_article: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        by_article.setdefault(c.chunk.article_id, []).append(i)
    out = list(candidates)
    for members in by_article.values():
        ordered = sorted(members, key=lambda i: candidates[i].start)
        for prev, cur in zip(ordered, ordered[1:], strict=False):
            p, c = candidates[prev], candidates[cur]
            if p.end <= c.start:
                out[cur] = replace(out[cur], before=p.dense)
                out[prev] = replace(out[prev], after=c.dense)
    return out
