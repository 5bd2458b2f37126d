"""`rag sources pull`: fetch what is new in every source, extract each article with the HTML path of
rag/ingest/articles.py, and store it in the data folder once, however many feeds carry it.

For an article the data folder gets `<id>.txt` (the extracted article), `<id>.json` (its sidecar: title, outlet,
published, url, author, language, from the feed first and the page's head second) and `raw/<id>.html` (the page
as fetched, for a later re-extraction); the index update reads the first two like any other article. The same
story again (the same canonical address, or the same text) is not stored twice: the other outlet is recorded as
"also reported by". Any failure is a note naming the source and the item; nothing stored before is touched."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from rag.errors import RagError
from rag.ingest.articles import decode, html_to_text
from rag.ingest.metadata import clean_fields, html_head
from rag.sources.feeds import Item, Listing, NotAFeedError, newest_first, read_listing
from rag.sources.fetch import Fetched, Fetcher, FetchError
from rag.sources.store import Source, SourceStore, normal_url

RAW_FOLDER = "raw"  # under the data folder: the pages as fetched (the build reads only the folder's own files)
MIN_WORDS = 20  # fewer words extracted: not an article (a login wall, an empty page)
MAX_SITEMAPS = 20  # sitemaps read from one sitemap index per pull
_ID_HOST = re.compile(r"[^a-z0-9]+")


@dataclass(slots=True)
class PullReport:
    """What a pull did: item addresses looked at, article ids stored, duplicates found, items failed, the notes
    (each naming its source and item), requests made, seconds."""

    sources: int = 0
    items: int = 0
    stored: list[str] = field(default_factory=list)
    duplicates: int = 0
    failed: int = 0
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0


def article_id(canonical: str) -> str:
    """A stable id for the article at `canonical`: its host and a hash of the address (`aljazeera_net-3f2a…`)."""
    host = urlsplit(canonical).netloc.lower().removeprefix("www.")
    name = _ID_HOST.sub("_", host).strip("_")[:40] or "web"
    return f"{name}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def text_digest(text: str) -> str:
    """The hash two copies of one story share: the article's words, spacing ignored."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def inspect(fetcher: Fetcher, url: str) -> Listing:
    """What `url` is (`rag sources add` checks it before following it); RagError saying why it cannot be one."""
    try:
        got = fetcher.get(url)
        return read_listing(got.body, got.content_type, got.final_url)
    except FetchError as exc:
        raise RagError(f"Cannot add {url}: {exc}") from None
    except NotAFeedError as exc:
        raise RagError(
            f"Cannot add {url}: {exc}. Give an RSS, Atom or JSON Feed, a sitemap, or an article page."
        ) from None


def pull(
    data_dir: Path,
    store: SourceStore,
    fetcher: Fetcher,
    *,
    max_items: int = 100,
    progress: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> PullReport:
    """Fetch every source's new items (at most `max_items` per source, newest first) into `data_dir`."""
    t0 = time.perf_counter()
    report = PullReport()
    tell = on_note or (lambda note: None)

    def note(text: str) -> None:
        report.notes.append(text)
        tell(text)

    data_dir.mkdir(parents=True, exist_ok=True)
    for source in store.sources():
        report.sources += 1
        _pull_source(data_dir, store, fetcher, source, max_items, progress, report, note)
    report.requests = fetcher.requests
    report.seconds = time.perf_counter() - t0
    return report


def _pull_source(
    data_dir: Path,
    store: SourceStore,
    fetcher: Fetcher,
    source: Source,
    max_items: int,
    progress: bool,
    report: PullReport,
    note: Callable[[str], None],
) -> None:
    page_kind = source.kind == "page"
    if page_kind and not store.wanted(source.url):  # one article, already stored: never fetched again
        store.pulled(source, "ok", None)
        return
    try:
        got = fetcher.get(source.url, None if page_kind else source.etag, None if page_kind else source.last_modified)
    except FetchError as exc:
        note(f"source {source.url}: {exc}; nothing stored was changed")
        store.pulled(source, "failed", str(exc))
        return
    if got.not_modified:
        store.pulled(source, "not modified", None)
        return
    if page_kind:
        listing, pages = Listing("page", None, None, (Item(source.url),)), {normal_url(source.url): got}
    else:
        try:
            listing = read_listing(got.body, got.content_type, got.final_url)
            if listing.kind == "page":
                raise NotAFeedError(f"an HTML page now, not the {source.kind} feed it was (moved? an error page?)")
        except NotAFeedError as exc:
            note(f"source {source.url}: {exc}; nothing stored was changed")
            store.pulled(source, "failed", str(exc))
            return
        listing, pages = _with_sitemaps(listing, fetcher, source, note), {}
    taken = store.settled([i.url for i in listing.items])  # stored, or given up on
    wanted: list[Item] = []
    left = 0  # new items beyond max_items: the next pull's
    for item in listing.items:  # newest first; an address listed twice is taken once
        address = normal_url(item.url)
        if address not in taken:
            taken.add(address)
            if len(wanted) < max_items:
                wanted.append(item)
            else:
                left += 1
    failed_before = report.failed
    bar = _bar(wanted, progress, urlsplit(source.url).netloc)
    for item in wanted:
        report.items += 1
        try:
            page = pages.get(normal_url(item.url)) or fetcher.get(item.url)
            _store_item(data_dir, store, source, listing, item, page, report, note)
        except (FetchError, RagError) as exc:
            report.failed += 1
            text = str(exc)
            store.failed(item.url, source, text)
            note(f"source {source.url}: item {item.url}: {text.removeprefix(item.url + ': ')}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if left or report.failed > failed_before:  # the listing must be read again next time, not answered 304
        later = f"{left} more item(s) next pull" if left else "failed items are tried again next pull"
        store.pulled(source, "ok", later, forget_validators=True)
    else:
        store.pulled(source, "ok", None, got.etag, got.last_modified)


def _bar(items: list[Item], progress: bool, label: str):  # type: ignore[no-untyped-def]
    if not progress or not items:
        return None
    from tqdm import tqdm

    return tqdm(total=len(items), desc=label, unit="item")


def _with_sitemaps(listing: Listing, fetcher: Fetcher, source: Source, note: Callable[[str], None]) -> Listing:
    """A sitemap index's items: those of its first MAX_SITEMAPS sitemaps, newest first."""
    if listing.kind != "sitemap-index":
        return listing
    items: list[Item] = []
    for child in listing.children[:MAX_SITEMAPS]:
        try:
            got = fetcher.get(child)
            items.extend(read_listing(got.body, got.content_type, got.final_url).items)
        except (FetchError, NotAFeedError) as exc:
            note(f"source {source.url}: sitemap {child}: {exc}")
    return Listing("sitemap", None, None, newest_first(items))


def _page_text(page: Fetched) -> str:
    try:
        return decode(page.body)
    except RagError:
        charset = re.search(r"charset=[\"']?([\w.:-]+)", page.content_type)
        try:
            return page.body.decode(charset.group(1) if charset else "utf-8", "replace")
        except LookupError:
            return page.body.decode("utf-8", "replace")


def _store_item(
    data_dir: Path,
    store: SourceStore,
    source: Source,
    listing: Listing,
    item: Item,
    page: Fetched,
    report: PullReport,
    note: Callable[[str], None],
) -> None:
    raw = _page_text(page)
    where = f"source {source.url}: item {item.url}"
    declared, _ = clean_fields(html_head(raw), where)  # a page's odd metadata is not worth a note
    text = html_to_text(raw)
    if len(text.split()) < MIN_WORDS:
        raise RagError(f"{item.url}: no article text on the page ({len(text.split())} words); skipped")
    address = urljoin(page.final_url, declared.get("url") or page.final_url)  # <link rel="canonical">, else as fetched
    canonical = normal_url(address)
    digest = text_digest(text)
    outlet = source.outlet or item.outlet or declared.get("outlet") or listing.title or urlsplit(canonical).netloc
    first = store.duplicate_of(canonical, digest)
    if first is not None:
        store.duplicate(item.url, source, first, canonical, digest, outlet)
        report.duplicates += 1
        return
    fields = {
        "title": item.title or declared.get("title"),
        "outlet": outlet,
        "published": item.published or declared.get("published"),
        "url": address,
        "author": item.author or declared.get("author"),
        "language": item.language or declared.get("language") or listing.language,
    }
    if not fields["published"] and item.date_note:
        note(f"{where}: {item.date_note} and the page gives none; stored without a date")
    aid = article_id(canonical)
    write_article(data_dir, aid, text, {k: v for k, v in fields.items() if v}, page.body)
    store.stored(item.url, source, aid, canonical, digest, outlet)
    report.stored.append(aid)


def write_article(data_dir: Path, aid: str, text: str, fields: dict[str, str], raw: bytes) -> None:
    """The article's files, each written whole (a reader never sees half a file): the raw page, the sidecar,
    then the text, so an update that runs meanwhile sees the article with its metadata or not at all."""
    import json

    (data_dir / RAW_FOLDER).mkdir(exist_ok=True)
    _write_whole(data_dir / RAW_FOLDER / f"{aid}.html", raw)
    _write_whole(data_dir / f"{aid}.json", json.dumps(fields, ensure_ascii=False, indent=1).encode())
    _write_whole(data_dir / f"{aid}.txt", text.encode())


def _write_whole(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}.part")
    part.write_bytes(data)
    os.replace(part, path)
