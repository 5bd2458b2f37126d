"""What the command line prints: passages, answers and their sources, rendered from the answer view
(`rag.answer.view`) as text or JSON; nothing here decides how an answer is shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from rag.answer.render import also_reported_by, source_text, where_published
from rag.answer.view import AnswerView, Source, answer_view, groups_line, source_of_hit
from rag.types import Article, Filter, Hit

if TYPE_CHECKING:
    from rag.answer.pipeline import AnswerStream
    from rag.attribute.said import Timeline
    from rag.check.claims import Verdict


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


def print_view(view: AnswerView) -> None:
    """After the answer's text: its quotes by outlet (from two or more), its warnings, its sources (each with its
    mark, and what it says when no quote block showed it), then the quote aside."""
    if view.groups:
        typer.echo(f"By outlet: {groups_line(view.groups)}\n")
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


def print_filter(scope: Filter) -> None:
    """The filter a command's results come from, above them (nothing when none is active)."""
    if scope.active:
        typer.echo(f"(filter: {scope.describe()})\n")


def print_timeline(t: Timeline, articles: Mapping[str, Article]) -> None:
    """`rag said`: the person's statements by date, each with its outlet, article and speaker's title; a wire copy
    once, with the outlets that carried it too."""
    from rag.attribute.said import timeline_summary, wire_copies

    typer.echo(timeline_summary(t) + ("\n" if t.said else ""))
    copies = wire_copies(t.said)
    for r in (r for r in t.said if id(r) in copies):
        where = where_published(r.published, r.outlet, r.title)
        others = also_reported_by(articles.get(r.statement.article_id), copies[id(r)], articles)
        also = f" · also reported by {', '.join(others)}" if others else ""
        speaker = r.statement.speaker + (f" ({r.statement.role})" if r.statement.role else "")
        cite = f"[{r.statement.article_id} {r.statement.start}-{r.statement.end}]"
        typer.echo(f"{where}{also}\n  {speaker}: {r.text}\n  {cite}\n")


def print_verdict(v: Verdict, articles: Mapping[str, Article]) -> None:
    """`rag check`: the verdict, then the sentences for and against it (the closest when none), each with where it
    was published, why it counts against (or is only the closest) and its citation."""
    from rag.check.claims import VERDICT_TEXT, published_line, sections

    typer.echo(f"{VERDICT_TEXT[v.verdict]}\n")
    for title, rows in sections(v):
        typer.echo(f"{title}:")
        for e in rows:
            why = f"\n  ({e.reason})" if e.reason else ""
            typer.echo(f"{published_line(e, articles)}\n  {e.sentence}{why}\n  [{e.article_id} {e.start}-{e.end}]\n")
