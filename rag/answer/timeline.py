"""A who-said-what question answered by the speaker's statements (rag/attribute/said.py), in both answer modes.

"What did Mao Ning say about dual-use exports?" / "ماذا قالت ماو نينغ عن ...؟": when the index quotes someone of
that name on the topic, the answer is those statements, by date (the same sentence carried by several outlets
shown once, "also reported by" the others). In quote mode they are shown verbatim, each with its outlet and date;
in generate mode the answer model reads them (each passage tagged with its outlet and date) and writes the
answer, its citations checked as for any answer, the statements kept beside it. A person the index never quotes,
or never on the topic, goes through the usual pipeline: the passages may still hold the answer in words the
speaker's body said for them ("ذكرت الصين أيضا ..." after the spokeswoman's quotes), or the estimate refuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rag.answer.prompts import timeline_intro
from rag.attribute.said import Timeline, said, said_question, wire_copies
from rag.retrieve.retriever import Retriever
from rag.text.arabic import detect_language
from rag.types import Evidence, Filter, Hit, KeyQuote

MAX_SHOWN = 10  # statements an answer shows (the latest); `rag said` lists them all


@dataclass(frozen=True, slots=True)
class TimelineAnswer:
    """What the pipeline needs to answer from statements: the evidence (one passage per statement), the key quotes
    (the statements) and the quote answer's first line."""

    evidence: Evidence
    quotes: tuple[KeyQuote, ...]
    intro: str
    timeline: Timeline


def timeline_answer(
    question: str, asked: str, retriever: Retriever, scope: Filter | None = None
) -> TimelineAnswer | None:
    """The statements that answer a who-said-what `question` (as searched; `asked` as typed, for its language), or
    None when it is not one, or nobody of that name is quoted on the topic."""
    form = said_question(question)
    if form is None or not retriever.index.records.has_statements:
        return None
    t0 = time.perf_counter()
    person, about = form
    timeline = said(retriever, person, about, scope)
    if not timeline.said:
        return None
    lang = detect_language(asked)
    who = person if person in timeline.speakers else f"{person} ({', '.join(timeline.speakers[:2])})"
    copies = wire_copies(timeline.said)
    shown = [r for r in timeline.said if id(r) in copies][-MAX_SHOWN:]
    hits, quotes = [], []
    for n, row in enumerate(shown, 1):
        chunk = retriever.index.chunk_at(row.statement.article_id, row.statement.start, row.statement.end)
        assert chunk is not None  # a statement's article is in the index
        # found by its speaker: on the topic by construction; the same sentence elsewhere is "also reported by"
        hits.append(Hit(chunk=chunk, score=1.0, dense=1.0, also=copies[id(row)]))
        s = row.statement
        score = 1.0 if row.score is None else row.score
        quotes.append(KeyQuote(n, chunk, s.start, s.end, row.text, score, focus=(s.start, s.end)))
    passages = tuple(f"{r.statement.speaker}: {r.text}" for r in shown)
    evidence = Evidence(
        question=question,
        hits=tuple(hits),
        passages=passages,
        highlights=tuple(((r.statement.start, r.statement.end),) for r in shown),
        search_seconds=time.perf_counter() - t0,
    )
    intro = timeline_intro(lang, who, about, len(shown), len(copies))
    return TimelineAnswer(evidence, tuple(quotes), intro, timeline)
