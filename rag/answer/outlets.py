"""Outlets side by side: a question that names two or more outlets of the index ("How did Al Jazeera and the BBC
report Wang Yi's visit to Moscow?") is searched in each outlet's articles, and the best key quote of each is shown,
the answer view grouping them by outlet and day (rag/answer/view.py). An outlet the filters leave out, or whose
articles hold nothing for the question, is left out; with fewer than two left the question is answered as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from rag.answer.quotes import QuotePicker
from rag.answer.verify import outlets_named
from rag.errors import NothingMatchesError
from rag.retrieve.retriever import Retriever
from rag.types import Evidence, Filter, Hit, KeyQuote

PER_OUTLET = 2  # passages searched in each outlet's articles

Gather = Callable[[str, Retriever, int, int, Filter | None], Evidence]  # rag.answer.pipeline.gather_evidence


@dataclass(frozen=True, slots=True)
class SideBySide:
    """The passages of each outlet a question names, in one Evidence, and the best key quote of each outlet."""

    evidence: Evidence
    quotes: tuple[KeyQuote, ...]  # one per outlet, in the question's order, numbered as in evidence.hits
    outlets: tuple[str, ...]  # the outlets that had passages


def outlets_asked(question: str, retriever: Retriever) -> tuple[str, ...]:
    """The outlets of the index a question names (an English outlet also written in Arabic: الجزيرة), in the order
    the index counts them."""
    return tuple(outlets_named(question, retriever.index.records.outlets(), by_sound=True))


def side_by_side(
    question: str,
    retriever: Retriever,
    picker: QuotePicker | None,
    gather: Gather,
    sentences: int = 2,
    scope: Filter | None = None,
) -> SideBySide | None:
    """The question searched in each outlet it names (within `scope`), or None when fewer than two outlets have
    passages for it (then it is answered as any question)."""
    named = outlets_asked(question, retriever)
    kept = {o.lower() for o in scope.outlets} if scope is not None and scope.outlets else None
    parts: list[tuple[str, Evidence]] = []
    for outlet in named:
        if kept is not None and outlet.lower() not in kept:
            continue
        try:
            found = gather(question, retriever, PER_OUTLET, sentences, replace(scope or Filter(), outlets=(outlet,)))
        except NothingMatchesError:
            continue
        if found.hits:
            parts.append((outlet, found))
    if len(parts) < 2:
        return None
    hits: list[Hit] = []
    passages: list[str] = []
    highlights: list[tuple[tuple[int, int], ...]] = []
    quotes: list[KeyQuote] = []
    for _, found in parts:
        offset = len(hits)
        if picker is not None and found.query is not None:
            quotes += [replace(q, n=q.n + offset) for q in picker.pick(found.query, found.hits, count=1)]
        hits += found.hits
        passages += found.passages
        highlights += found.highlights
    first = parts[0][1]
    evidence = Evidence(
        question,
        tuple(hits),
        tuple(passages),
        tuple(highlights),
        first.query,
        sum(found.search_seconds for _, found in parts),
    )
    return SideBySide(evidence, tuple(quotes), tuple(o for o, _ in parts))
