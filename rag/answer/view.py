"""One answer as every front end shows it: the page, the CLI's text and the CLI's JSON render an `AnswerView` and
decide nothing themselves.

The view says what to show first (the answer, or the closest passages' intro as a warning), the key quotes shown
verbatim as blocks, the warnings, the aside (the closest passage when the answer model abstained, or the key quote
under a generated answer), the sources with their article's metadata and whether each supports the answer, the
meta line, and the JSON form of `rag ask --json` (its keys are documented in docs/cli.md and held by the tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answer.prompts import CLOSEST_INTROS, UNCERTAIN_INTROS
from rag.answer.render import also_reported_by, safe_url
from rag.llm.local_server import CRASH_REPORT
from rag.text.arabic import detect_language
from rag.types import Answer, Article, Chunk, Citation, Evidence, Filter, Hit, KeyQuote

Span = tuple[int, int]

UNSUPPORTED = "No cited passage supports this answer: read the sources before trusting it."
KEY_QUOTE_INTRO = "Key quote from the articles (verbatim):"
SOURCES = "Sources"
RETRIEVED = "Retrieved passages (the answer model did not answer)"


@dataclass(frozen=True, slots=True)
class Source:
    """A passage shown as a source: where it comes from, who else carried it, what to highlight, and whether it
    supports the answer, in the words each front end shows."""

    n: int
    chunk: Chunk
    article: Article | None
    others: tuple[str, ...] = ()  # the outlets (or titles) of the other articles that carried the passage
    highlights: tuple[Span, ...] = ()
    supported: bool | None = None  # None: not checked, or a closest passage (it may not answer)
    reason: str = ""  # why it does not support the answer
    mark: str = ""  # after its line in the terminal: "(quoted verbatim)", "✓ supported", "⚠ unverified: …"
    excerpt: str = ""  # under its line in the terminal ("" when a quote block above shows it)
    verdict: str = ""  # in its popover on the page ("" = nothing to say)
    warn: bool = False  # the verdict is a warning: the citation is unverified
    citation: Citation | None = None
    hit: Hit | None = None

    @property
    def title(self) -> str:
        """The article's title, or its id when the index does not know it."""
        return self.article.title if self.article else self.chunk.article_id

    @property
    def outlet(self) -> str | None:
        return self.article.outlet if self.article else None

    @property
    def published(self) -> str | None:
        return self.article.published if self.article else None

    @property
    def url(self) -> str | None:
        """The link to the original, when it is a web address (http, https)."""
        return safe_url(self.article.url) if self.article else None

    def as_json(self) -> dict[str, Any]:
        """The passage and where it comes from: offsets, text, title, outlet, date, link (null when unknown), and
        who else carried it."""
        c = self.chunk
        return {
            "article_id": c.article_id,
            "chunk_id": c.id,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "title": self.article.title if self.article else None,
            "outlet": self.outlet,
            "published": self.published,
            "url": self.url,
            "also_reported_by": list(self.others),
        }


@dataclass(frozen=True, slots=True)
class Block:
    """A key quote shown verbatim with its source; `closest`: shown as the closest passage, never as an answer."""

    quote: KeyQuote
    source: Source
    closest: bool = False


@dataclass(frozen=True, slots=True)
class OutletGroup:
    """What one outlet published on one day among an answer's quotes (or cited passages): their numbers, and the
    other outlets that carried the same passages (wire copies)."""

    outlet: str  # "" for articles of no known outlet
    published: str | None  # the day (YYYY-MM-DD)
    ns: tuple[int, ...]
    also: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "outlet": self.outlet or None,
            "published": self.published,
            "citations": list(self.ns),
            "also_reported_by": list(self.also),
        }


def outlet_groups(sources: Sequence[Source]) -> tuple[OutletGroup, ...]:
    """The sources by outlet and day, in the order they first appear; none unless two or more outlets are among
    them (one outlet needs no grouping)."""
    if len({s.outlet for s in sources if s.outlet}) < 2:
        return ()
    groups: dict[tuple[str, str | None], tuple[list[int], list[str]]] = {}
    for s in sources:
        ns, also = groups.setdefault((s.outlet or "", (s.published or "")[:10] or None), ([], []))
        if s.n not in ns:
            ns.append(s.n)
        also += [o for o in s.others if o not in also]
    return tuple(OutletGroup(o, d, tuple(ns), tuple(also)) for (o, d), (ns, also) in groups.items())


def groups_line(groups: Sequence[OutletGroup]) -> str:
    """ "Al Jazeera, 2023-02-22: [1] [3] · BBC, 2023-02-22: [2] (also reported by Reuters)" ("" for none)."""
    parts = []
    for g in groups:
        name = ", ".join(x for x in (g.outlet or "unknown outlet", g.published) if x)
        also = f" (also reported by {', '.join(g.also)})" if g.also else ""
        parts.append(f"{name}: {' '.join(f'[{n}]' for n in g.ns)}{also}")
    return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Aside:
    """A quote shown after the answer, with the line that introduces it (`warn`: that line is a warning)."""

    intro: str
    block: Block
    warn: bool = False


@dataclass(frozen=True, slots=True)
class AnswerView:
    """What to show of one answer, in order, and its JSON form."""

    question: str
    mode: str  # "quote", "generate", or "" when the answer model failed before answering
    outcome: str  # "answer", "closest", "refused", or "failed"
    text: str  # the whole answer text, as streamed (kept in the conversation)
    lead: str  # shown first: the answer, or the intro of the quotes below it
    lead_warn: bool  # the lead is a warning: the quotes below are the closest passages, not an answer
    blocks: tuple[Block, ...]  # the key quotes shown verbatim under the lead (quote mode)
    alerts: tuple[str, ...]  # warnings shown after the answer (no cited passage supports it)
    aside: Aside | None
    sources: tuple[Source, ...]
    heading: str  # above the sources
    retrieved: tuple[Source, ...]  # every passage the search found, with its scores (`/sources`)
    meta: str  # who answered, how fast, how many passages, the answerability, how it was searched
    notice: str | None  # a warning shown above the answer (the answer model crashed while rendering the question)
    searched_as: str | None  # a follow-up as it was searched
    data: Mapping[str, Any]  # the JSON form
    groups: tuple[OutletGroup, ...] = ()  # the quotes (or cited passages) by outlet and day, when from 2+ outlets

    @property
    def unsupported(self) -> bool:
        """No cited passage supports the answer."""
        return UNSUPPORTED in self.alerts


def source_of_citation(c: Citation, articles: Mapping[str, Article], mode: str, outcome: str) -> Source:
    """A cited passage: in quote mode quoted verbatim (or the closest passage), else checked against the answer."""
    article = articles.get(c.chunk.article_id)
    others = tuple(also_reported_by(article, c.also, articles))
    if mode == "quote":
        mark = " (quoted verbatim)" if outcome == "answer" else " (closest passage, verbatim: it may not answer)"
        excerpt = ""
    else:
        mark = "" if c.supported is None else " ✓ supported" if c.supported else f" ⚠ unverified: {c.reason}"
        excerpt = f"quote: {c.quote}" if c.quote else c.chunk.text
    if c.supported is False:
        verdict = f"Unverified: {c.reason}. The closest sentence of the passage is highlighted."
    else:
        verdict = "✓ The highlighted sentence supports the answer." if c.supported else ""
    return Source(
        c.n,
        c.chunk,
        article,
        others,
        c.highlights,
        supported=c.supported,
        reason=c.reason,
        mark=mark,
        excerpt=excerpt,
        verdict=verdict,
        warn=c.supported is False,
        citation=c,
    )


def source_of_hit(n: int, hit: Hit, articles: Mapping[str, Article], highlights: tuple[Span, ...] = ()) -> Source:
    """A retrieved passage (not cited): its text under its line in the terminal."""
    article = articles.get(hit.chunk.article_id)
    others = tuple(also_reported_by(article, hit.also, articles))
    return Source(n, hit.chunk, article, others, highlights, excerpt=hit.chunk.text, hit=hit)


def _block(q: KeyQuote, answer: Answer, articles: Mapping[str, Article], closest: bool) -> Block:
    return Block(q, source_of_hit(q.n, answer.hits[q.n - 1], articles), closest)


def _quote_json(q: KeyQuote) -> dict[str, Any]:
    return {
        "n": q.n,
        "quote": q.text,
        "score": q.score,
        "start": q.start,
        "end": q.end,
        "article_id": q.chunk.article_id,
    }


def filter_json(scope: Filter | None) -> dict[str, Any] | None:
    """A filter as JSON (null when none is active)."""
    if scope is None or not scope.active:
        return None
    return {
        "since": scope.since,
        "until": scope.until,
        "outlets": list(scope.outlets),
        "articles": list(scope.articles),
    }


def hit_json(rank: int, source: Source) -> dict[str, Any]:
    """A retrieved passage as `rag search --json` lists it: rank, scores, the passage and its source."""
    hit = source.hit
    assert hit is not None
    scores = {"score": round(hit.score, 4), "dense": round(hit.dense, 4), "lexical": round(hit.lexical, 4)}
    return {"rank": rank, **scores, **source.as_json()}


def hits_json(
    question: str,
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    query: tuple[str | None, str | None],
    scope: Filter | None,
) -> dict[str, Any]:
    """`rag search --json` and the API's /v1/search: the query, the filter, how it was searched, the passages."""
    rendering, skipped = query
    found = [hit_json(i, source_of_hit(i, h, articles)) for i, h in enumerate(hits, 1)]
    return {
        "query": question,
        "filter": filter_json(scope),
        "translation": rendering,
        "translation_skipped": skipped,
        "hits": found,
    }


def _citation_json(s: Source) -> dict[str, Any]:
    c = s.citation
    assert c is not None
    return {"n": c.n, **s.as_json(), "supported": c.supported, "quote": c.quote, "support": round(c.support, 4)}


def answer_view(
    answer: Answer, evidence: Evidence, articles: Mapping[str, Article], scope: Filter | None = None
) -> AnswerView:
    """The view of a finished answer."""
    language = detect_language(answer.question)
    closest = answer.outcome == "closest"
    sources = tuple(source_of_citation(c, articles, answer.mode, answer.outcome) for c in answer.citations)
    lead, aside = answer.text, None
    blocks: tuple[Block, ...] = ()
    if answer.mode == "quote" and not answer.refused:
        shown = {(c.n, c.quote) for c in answer.citations}
        lead = answer.text.split("\n", 1)[0]
        blocks = tuple(_block(q, answer, articles, closest) for q in answer.key_quotes if (q.n, q.text) in shown)
    elif answer.closest is not None:
        aside = Aside(CLOSEST_INTROS[language], _block(answer.closest, answer, articles, True))
    elif answer.key_quotes and not answer.refused:
        block = _block(answer.key_quotes[0], answer, articles, closest)
        # closest: the model answered, but the estimate doubts it and no citation is verified
        aside = Aside(UNCERTAIN_INTROS[language], block, True) if closest else Aside(KEY_QUOTE_INTRO, block)
    meta, notice = _meta(answer, evidence)
    groups = outlet_groups([b.source for b in blocks] or [s for s in sources if s.supported is not False])
    data = {
        "question": answer.question,
        "filter": filter_json(scope),
        "standalone_question": answer.standalone,
        "answer": answer.text,
        "mode": answer.mode,
        "outcome": answer.outcome,
        "confidence": answer.confidence,
        "signals": dict(answer.signals),
        "refused": answer.refused,
        "refused_by": answer.refused_by,
        "unsupported": answer.unsupported,
        "citations": [_citation_json(s) for s in sources],
        "key_quotes": [_quote_json(q) for q in answer.key_quotes],
        "closest": _quote_json(answer.closest) if answer.closest else None,
        "model": answer.model,
        "speakers": list(answer.speakers),
        "by_outlet": [g.as_json() for g in groups],
        "translation": evidence.translation,
        "translation_skipped": evidence.translation_skipped,
        "timings": {
            "search": round(answer.search_seconds, 3),
            "first_text": None if answer.first_text_seconds is None else round(answer.first_text_seconds, 3),
            "waited": round(answer.waited_seconds, 3),
            "total": round(answer.seconds, 3),
        },
    }
    return AnswerView(
        question=answer.question,
        mode=answer.mode,
        outcome=answer.outcome,
        text=answer.text,
        lead=lead,
        lead_warn=bool(blocks) and closest,
        blocks=blocks,
        alerts=(UNSUPPORTED,) if answer.unsupported else (),
        aside=aside,
        sources=sources,
        heading=SOURCES,
        retrieved=tuple(source_of_hit(n, h, articles) for n, h in enumerate(answer.hits, 1)),
        meta=meta,
        notice=notice,
        searched_as=answer.standalone,
        data=data,
        groups=groups,
    )


def retrieved_view(evidence: Evidence, articles: Mapping[str, Article]) -> AnswerView:
    """When the answer model failed: the passages found for the question, so it is not wasted."""
    sources = tuple(
        source_of_hit(n, h, articles, spans)
        for n, (h, spans) in enumerate(zip(evidence.hits, evidence.highlights, strict=True), 1)
    )
    data = {"question": evidence.question, "answer": None, "passages": [hit_json(s.n, s) for s in sources]}
    return AnswerView(
        question=evidence.question,
        mode="",
        outcome="failed",
        text="",
        lead="",
        lead_warn=False,
        blocks=(),
        alerts=(),
        aside=None,
        sources=sources,
        heading=RETRIEVED,
        retrieved=sources,
        meta="",
        notice=None,
        searched_as=None,
        data=data,
    )


def _meta(answer: Answer, evidence: Evidence) -> tuple[str, str | None]:
    """The meta line, and a notice to show above the answer (the rendering was lost to a crash of the model)."""
    unverified = sum(c.supported is False for c in answer.citations)
    if answer.refused:
        note = "the articles do not say"
    elif answer.outcome == "closest":
        note = "the articles may not answer: closest passages only" + (
            f", {unverified} unverified" if unverified else ""
        )
    elif answer.mode == "quote":
        note = f"{len(answer.citations)} quoted passage(s), verbatim"
    else:
        note = f"{len(answer.citations)} cited passage(s)" + (f", {unverified} unverified" if unverified else "")
    by = answer.model or (
        f"the statements of {', '.join(answer.speakers)}"
        if answer.speakers
        else "key quotes"
        if answer.mode == "quote"
        else "the retrieval check"
    )
    meta = f"Answered by {by} in {answer.seconds:.1f} s · {note}"
    if answer.confidence is not None:
        meta += f" · answerability {answer.confidence:.0%}"
    notice = None
    skipped = evidence.translation_skipped
    if evidence.translation:
        meta += f" · also searched in Arabic as «{evidence.translation}»"
    elif skipped and skipped.startswith(CRASH_REPORT):
        notice = f"Searched without the Arabic rendering: {skipped}"
        meta += " · searched without the Arabic rendering (the answer model crashed: see above)"
    elif skipped:
        meta += f" · searched without the Arabic rendering ({skipped})"
    return meta, notice
