"""What the command line prints: passages, answers and their sources, rendered from the answer view
(`rag.answer.view`) as text or JSON; nothing here decides how an answer is shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from rag.answer.render import source_text
from rag.answer.view import AnswerView, Source, answer_view, filter_json, hit_json, source_of_hit
from rag.types import Article, Filter, Hit

if TYPE_CHECKING:
    from rag.answer.pipeline import AnswerStream
    from rag.attribute.said import Timeline
    from rag.check.claims import Evidence, Verdict


def emit(data: Any) -> None:
    """JSON on stdout, Arabic as is."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def source_line(s: Source) -> str:
    """[n] id (offsets) title [mark], then, indented, outlet · date · link · also reported by … when known."""
    line = f"[{s.n}] {s.chunk.article_id} ({s.chunk.start}-{s.chunk.end}) {s.article.title if s.article else ''}"
    about = source_text(s.article, s.others)
    return f"{line}{s.mark}\n    {about}" if about else f"{line}{s.mark}"


def print_hits(
    hits: list[Hit], articles: Mapping[str, Article], query: tuple[str | None, str | None], scope: Filter
) -> None:
    """`rag search`: the passages found, as text or (`emit`) JSON; `query`: the rendering and why it is missing."""
    rendering, skipped = query
    if scope.active:
        typer.echo(f"(filter: {scope.describe()})")
    if rendering:
        typer.echo(f"(also searched as: {rendering})\n")
    else:
        searched_without(skipped)
    for i, h in enumerate(hits, 1):
        s = source_of_hit(i, h, articles)
        typer.echo(f"[{i}] {h.score:.3f} {h.chunk.id}")
        about = source_text(s.article, s.others)
        typer.echo(f"{about}\n{h.chunk.text}\n" if about else f"{h.chunk.text}\n")


def hits_json(
    question: str, hits: list[Hit], articles: Mapping[str, Article], query: tuple[str | None, str | None], scope: Filter
) -> dict[str, Any]:
    """`rag search --json`."""
    rendering, skipped = query
    found = [hit_json(i, source_of_hit(i, h, articles)) for i, h in enumerate(hits, 1)]
    return {
        "query": question,
        "filter": filter_json(scope),
        "translation": rendering,
        "translation_skipped": skipped,
        "hits": found,
    }


def print_view(view: AnswerView) -> None:
    """After the answer's text: its warnings, its sources (each with its mark, and what it says when no quote
    block showed it), then the quote aside."""
    for alert in view.alerts:
        typer.echo(f"⚠ {alert}\n")
    for s in view.sources:
        typer.echo(source_line(s))
        if s.excerpt:
            typer.echo(f"    {s.excerpt}\n")
    if view.sources and not any(s.excerpt for s in view.sources):
        typer.echo()
    if view.aside is not None:
        quote = view.aside.block.quote
        typer.echo(("⚠ " if view.aside.warn else "") + view.aside.intro)
        typer.echo(f"> {quote.text} [{quote.n}]")
        typer.echo(source_line(view.aside.block.source) + "\n")


def stream_answer(stream: AnswerStream, articles: Mapping[str, Article], scope: Filter | None) -> AnswerView:
    """Print the answer as it is generated, then the rest of its view."""
    searched_without(stream.evidence.translation_skipped)
    for delta in stream:
        typer.echo(delta, nl=False)
    typer.echo("\n")
    view = answer_view(stream.answer, stream.evidence, articles, scope)
    print_view(view)
    return view


def print_retrieved(view: AnswerView, as_json: bool) -> None:
    """When the answer model fails: the passages that were found, so the question is not wasted."""
    if as_json:
        emit(dict(view.data))
        return
    typer.echo(f"\n\n{view.heading}:\n")
    for s in view.sources:
        typer.echo(source_line(s))
        typer.echo(f"    {s.excerpt}\n")


def print_searched(view: AnswerView | None) -> None:
    """`/sources`: what the last answer was searched as, and every passage found, with its score."""
    if view is None:
        typer.echo("(no answer yet)")
        return
    typer.echo(f"searched as: {view.searched_as or view.question}")
    for s in view.retrieved:
        score = s.hit.score if s.hit is not None else 0.0
        typer.echo(f"{source_line(s)}\n    score {score:.3f}: {s.chunk.text}")


def say_waiting(ahead: int) -> None:
    """On stderr, while a question queues for the answer model (busy with other people's questions)."""
    if ahead:
        typer.echo(f"waiting for the answer model: {ahead} ahead", err=True)


def searched_without(reason: str | None) -> None:
    """On stderr, why an English question was searched without its Arabic rendering (nothing when it was not)."""
    if reason:
        typer.echo(f"(searched without the Arabic rendering: {reason})\n", err=True)


def print_timeline(t: Timeline) -> None:
    """`rag said`: the person's statements by date, each with its outlet, article and speaker's title."""
    who = f"{t.person} ({', '.join(t.speakers)})" if t.speakers else t.person
    topic = f" about «{t.about}»" if t.about else ""
    if not t.speakers:
        typer.echo(f"No statement by {t.person} in the articles: nobody quoted there has that name.")
        return
    if not t.said:
        typer.echo(f"The articles hold no statement by {who}{topic} ({t.left_out} on other subjects).")
        return
    others = f"; {t.left_out} more on other subjects" if t.left_out else ""
    typer.echo(f"{who}{topic}: {len(t.said)} statement(s){others}\n")
    for r in t.said:
        where = " · ".join(x for x in ((r.published or "undated")[:10], r.outlet, r.title) if x)
        speaker = r.statement.speaker + (f" ({r.statement.role})" if r.statement.role else "")
        cite = f"[{r.statement.article_id} {r.statement.start}-{r.statement.end}]"
        typer.echo(f"{where}\n  {speaker}: {r.text}\n  {cite}\n")


_VERDICT_LINES = {
    "supported": "Supported: the articles say it.",
    "contradicted": "Contradicted: the articles say otherwise.",
    "mixed": "Mixed: the articles disagree.",
    "not found": "Not found: the articles do not say it (nor the opposite).",
}


def evidence_line(e: Evidence) -> str:
    """date · outlet · title, the sentence verbatim, why (against or closest), its citation and wire copies."""
    where = " · ".join(x for x in ((e.published or "undated")[:10], e.outlet, e.title) if x)
    also = f" (also reported by {len(e.also)} more: {', '.join(e.also)})" if e.also else ""
    why = f"\n  ({e.reason})" if e.reason else ""
    return f"{where}\n  {e.sentence}{why}\n  [{e.article_id} {e.start}-{e.end}]{also}"


def print_verdict(v: Verdict) -> None:
    """`rag check`: the verdict, then the sentences for and against it (the closest when none)."""
    typer.echo(f"{_VERDICT_LINES[v.verdict]}\n")
    for title, rows in (("For", v.support), ("Against", v.against), ("Closest (not evidence)", v.closest)):
        if rows:
            typer.echo(f"{title}:")
            for e in rows:
                typer.echo(evidence_line(e) + "\n")
