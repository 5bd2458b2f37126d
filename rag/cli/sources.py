"""`rag sources` (feeds, sitemaps and pages followed into the data folder) and `rag watch` (saved questions)."""

from __future__ import annotations

import signal
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rag.cli import show

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.sources.follow import Round
    from rag.sources.watch import WatchHit

sources_app = typer.Typer(
    help="Follow RSS, Atom and JSON feeds, sitemaps and article pages into the data folder.", no_args_is_help=True
)
watch_app = typer.Typer(help="Saved questions: which new articles answer them.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RefArg = Annotated[str, typer.Argument(help="Its number (as listed) or its address / text.")]


def _settings(**overrides: object) -> Settings:
    from rag.cli.main import _settings as settings

    return settings(**{k: v for k, v in overrides.items() if v is not None})


def _store():  # type: ignore[no-untyped-def]
    from rag.sources.store import SourceStore
    from rag.state.db import StateDB

    return SourceStore(StateDB(_settings().state_dir))


def _watches():  # type: ignore[no-untyped-def]
    from rag.sources.watch import WatchStore
    from rag.state.db import StateDB

    return WatchStore(StateDB(_settings().state_dir))


@sources_app.command("add")
def sources_add(
    url: Annotated[str, typer.Argument(help="An RSS, Atom or JSON Feed, a sitemap, or one article's address.")],
    outlet: Annotated[
        str | None, typer.Option("--outlet", help="The outlet its articles are filed under (default: as they say).")
    ] = None,
) -> None:
    """Follow a feed, a sitemap or a page: it is fetched once now to see what it is."""
    from rag.sources.follow import fetcher_for
    from rag.sources.pull import inspect

    with fetcher_for(_settings()) as fetcher:
        listing = inspect(fetcher, url)
    source = _store().add(url, listing.kind, listing.title, outlet)
    held = f"{len(listing.children)} sitemaps" if listing.children else f"{len(listing.items)} items now"
    title = f" {listing.title!r}" if listing.title else ""
    typer.echo(f"Following [{source.id}] {url} ({listing.kind}{title}, {held}); `rag sources pull` fetches them.")


@sources_app.command("list")
def sources_list(as_json: JsonOpt = False) -> None:
    """The sources: number, kind, address, articles stored, the last pull and its note."""
    store = _store()
    found, failures = store.sources(), store.failures()
    if as_json:
        show.emit({"sources": [asdict(s) for s in found], "failed_items": [asdict(f) for f in failures]})
        return
    if not found:
        typer.echo("No sources: `rag sources add URL` follows a feed, a sitemap or a page.")
    for s in found:
        name = s.outlet or s.title or ""
        last = f"pulled {s.pulled}: {s.status}" if s.pulled else "never pulled"
        typer.echo(f"[{s.id}] {s.kind:<13} {s.url}  {name}\n    {s.articles} articles · {last}")
        if s.note:
            typer.echo(f"    note: {s.note}")
    if failures:
        typer.echo(f"{len(failures)} item(s) failed (tried again on the next pulls, at most 3 times):")
        for f in failures[:20]:
            typer.echo(f"    {f.url} ({f.tries}x): {f.note}")


@sources_app.command("remove")
def sources_remove(ref: RefArg) -> None:
    """Stop following a source; the articles it brought stay in the data folder and the index."""
    source = _store().remove(ref)
    typer.echo(f"No longer following [{source.id}] {source.url}; its {source.articles} articles stay.")


@sources_app.command("pull")
def sources_pull(
    every: Annotated[
        str | None,
        typer.Option("--every", help="Pull again every period (15m, 1h, 90s, 1d) until stopped; for a supervisor."),
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Data folder [env RAG_DATA_DIR].")] = None,
    index: Annotated[Path | None, typer.Option("--index", help="Index folder [env RAG_INDEX_DIR].")] = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="Only fetch and store; `rag index update` and `rag watch run` later.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch new items of every source into the data folder, update the index, check the watches."""
    from rag.sources.follow import Follower, period_seconds

    seconds = period_seconds(every) if every else None
    s = _settings(data_dir=data, index_dir=index)
    follower = Follower(s, progress=not as_json, on_note=lambda note: typer.echo(f"note: {note}", err=True))
    report = (lambda r: show.emit(_round_json(r))) if as_json else _echo_round
    if seconds is None:
        report(follower.round(not no_index))
        return
    typer.echo(f"Pulling every {every} (Ctrl+C or SIGTERM stops).", err=True)
    signal.signal(signal.SIGTERM, _stop)  # a supervisor's stop ends as Ctrl+C does (files are written aside)
    follower.every(seconds, on_round=report, index=not no_index)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _round_json(r: Round) -> dict[str, object]:
    u = r.update
    return {
        "pull": asdict(r.pull),
        "update": None if u is None else {"added": u.added, "changed": u.changed, "removed": u.removed},
        "watch_hits": [asdict(h) for h in r.hits],
    }


def _echo_round(r: Round) -> None:
    p = r.pull
    rate = p.items / p.seconds if p.seconds else 0.0
    typer.echo(
        f"Pulled {p.sources} source(s): {len(p.stored)} new article(s), {p.duplicates} duplicate(s) of stored ones, "
        f"{p.failed} failed; {p.requests} requests, {p.items} items in {p.seconds:.1f} s ({rate:.1f} items/s)."
    )
    if r.update is not None:
        u = r.update
        typer.echo(f"Index: {len(u.added)} added, {len(u.changed)} changed, {len(u.removed)} removed.")
    _echo_hits(r.hits)


def _echo_hits(hits: list[WatchHit] | tuple[WatchHit, ...]) -> None:
    watches = {w.id: w.question for w in _watches().watches()}
    for h in hits:
        typer.echo(f"watch [{h.watch_id}] {watches.get(h.watch_id, '')!r}: {h.article_id}\n    «{h.quote}»")


@watch_app.command("add")
def watch_add(question: Annotated[str, typer.Argument(help="A question or a claim, in English or Arabic.")]) -> None:
    """Save a question: the articles that arrive from now on and answer it are recorded (`rag watch list`)."""
    watch = _watches().add(question)
    typer.echo(f"Watching [{watch.id}] {watch.question!r}; `rag watch run {watch.id}` checks the articles held now.")


@watch_app.command("list")
def watch_list(as_json: JsonOpt = False) -> None:
    """The watches, each with the articles that answered it (newest first, * = new since the page last looked)."""
    store = _watches()
    found = store.watches()
    if as_json:
        show.emit([asdict(w) | {"hits": [asdict(h) for h in store.hits(w.id)]} for w in found])
        return
    if not found:
        typer.echo('No watches: `rag watch add "QUESTION"` saves one.')
    for w in found:
        typer.echo(f"[{w.id}] {w.question}  ({w.hits} article(s), {w.new} new; checked {w.checked or 'never'})")
        for h in store.hits(w.id)[:10]:
            typer.echo(f"   {'*' if h.new else ' '} {h.found} {h.article_id}: «{h.quote}»")


@watch_app.command("run")
def watch_run(ref: Annotated[str | None, typer.Argument(help="One watch (default: all).")] = None) -> None:
    """Check every article of the index against the watches now (new hits are recorded, old ones kept)."""
    from rag.serve.archive import Archive
    from rag.sources.watch import check_watches

    store = _watches()
    only = store.get(ref).id if ref else None
    hits = check_watches(Archive(_settings()).pipeline(), store, None, only)
    _echo_hits(hits)
    typer.echo(f"{len(hits)} new hit(s).")


@watch_app.command("remove")
def watch_remove(ref: RefArg) -> None:
    """Forget a watch and its hits."""
    watch = _watches().remove(ref)
    typer.echo(f"No longer watching [{watch.id}] {watch.question!r}.")
