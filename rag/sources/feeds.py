"""What a source's address holds: the items of an RSS or Atom feed (read by feedparser), of a JSON Feed (JSON), of
a sitemap or sitemap index (lxml, entities and the network off), or one article page. Dates become ISO date-times
in UTC; an item's missing or unreadable date is kept as a note, the item stays."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from rag.ingest.metadata import MetadataError, published_date

KINDS = ("rss", "atom", "jsonfeed", "sitemap", "sitemap-index", "page")
_HTML = re.compile(rb"^\s*(<!doctype html|<html\b|<head\b|<body\b)", re.IGNORECASE)
_XML_START = re.compile(rb"^\s*(<\?xml|<)")


class NotAFeedError(ValueError):
    """The body is none of the kinds read here; the message says what it looked like."""


@dataclass(frozen=True, slots=True)
class Item:
    """One article a listing points to, with the metadata the listing gives."""

    url: str
    title: str | None = None
    published: str | None = None  # ISO date-time (UTC) or date
    date_note: str | None = None  # why there is no date: none given, or the one given could not be read
    author: str | None = None
    language: str | None = None
    outlet: str | None = None  # the item's own source, when the feed names one


@dataclass(frozen=True, slots=True)
class Listing:
    """A source's items (for a sitemap index: the addresses of its sitemaps), newest first when dated."""

    kind: str
    title: str | None
    language: str | None
    items: tuple[Item, ...]
    children: tuple[str, ...] = ()  # a sitemap index's sitemaps


def read_listing(body: bytes, content_type: str, url: str) -> Listing:
    """The listing at `url` (see the module docstring); NotAFeedError when it is not one."""
    head = body[:2048].lstrip()
    if "json" in content_type.lower() or head.startswith(b"{"):
        return _json_feed(body, url)
    if "html" in content_type.lower() or _HTML.match(body[:2048]):
        return Listing("page", None, None, (Item(url),))
    if not _XML_START.match(head):
        raise NotAFeedError(f"neither XML, a JSON Feed nor an HTML page (it starts {body[:40]!r})")
    root = _xml_root(body)
    if root is not None and _local(root.tag) in ("urlset", "sitemapindex"):
        return _sitemap(root, url)
    return _feed(body, url)


def newest_first(items: list[Item]) -> tuple[Item, ...]:
    """Dated items newest first (a day counts as its midnight), then the undated in their order."""
    dated = sorted((i for i in items if i.published), key=lambda i: _sort_key(i.published or ""), reverse=True)
    return (*dated, *(i for i in items if not i.published))


def _sort_key(published: str) -> str:
    return published if "T" in published else published + "T00:00:00"


def _feed(body: bytes, url: str) -> Listing:
    import feedparser

    parsed = feedparser.parse(body, response_headers={"content-location": url})
    version = parsed.get("version") or ""
    if not version:
        problem = parsed.get("bozo_exception")
        raise NotAFeedError(f"not an RSS or Atom feed ({problem or 'no feed elements'})")
    feed = parsed.get("feed", {})
    language = _text(feed.get("language"))
    items = []
    for entry in parsed.get("entries", []):
        link = _text(entry.get("link")) or _link_of(entry)
        if not link:
            continue
        published, note = _entry_date(entry)
        source = entry.get("source") or {}
        items.append(
            Item(
                url=urljoin(url, link),
                title=_text(entry.get("title")),
                published=published,
                date_note=note,
                author=_text(entry.get("author")),
                language=_text(entry.get("language")) or language,
                outlet=_text(source.get("title")) if isinstance(source, dict) else None,
            )
        )
    kind = "atom" if version.startswith("atom") else "rss"
    return Listing(kind, _text(feed.get("title")), language, newest_first(items))


def _link_of(entry: Any) -> str | None:
    for link in entry.get("links", []) or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    guid = _text(entry.get("id"))
    return guid if guid and guid.startswith(("http://", "https://")) else None


def _entry_date(entry: Any) -> tuple[str | None, str | None]:
    for parsed, raw in (("published_parsed", "published"), ("updated_parsed", "updated")):
        when = entry.get(parsed)
        if when:
            year, month, day, hour, minute, second = when[:6]
            return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).isoformat(), None
        if entry.get(raw):
            return None, f"its date {entry.get(raw)!r} could not be read"
    return None, "it has no date"


def _json_feed(body: bytes, url: str) -> Listing:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAFeedError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise NotAFeedError('JSON, but not a JSON Feed (no "version": "https://jsonfeed.org/version/1.1")')
    language = _text(data.get("language"))
    items = []
    for entry in data.get("items") or []:
        if not isinstance(entry, dict):
            continue
        link = _text(entry.get("url")) or _text(entry.get("external_url"))
        if not link:
            continue
        published, note = _iso_date(entry.get("date_published") or entry.get("date_modified"))
        authors = entry.get("authors") or ([entry["author"]] if isinstance(entry.get("author"), dict) else [])
        names = [str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name")]
        items.append(
            Item(
                url=urljoin(url, link),
                title=_text(entry.get("title")),
                published=published,
                date_note=note,
                author=", ".join(names) or None,
                language=_text(entry.get("language")) or language,
            )
        )
    return Listing("jsonfeed", _text(data.get("title")), language, newest_first(items))


def _iso_date(value: object) -> tuple[str | None, str | None]:
    if value in (None, ""):
        return None, "it has no date"
    try:
        text = published_date(str(value).replace("Z", "+00:00"))
    except MetadataError:
        return None, f"its date {value!r} could not be read"
    return text, None


def _xml_root(body: bytes) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        return etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError:
        return None  # feedparser copes with a broken feed better, and says why it is not one


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(element: Any, name: str) -> str | None:
    for child in element.iter():
        if _local(child.tag) == name and child.text and child.text.strip():
            return str(child.text.strip())
    return None


def _sitemap(root: Any, url: str) -> Listing:
    if _local(root.tag) == "sitemapindex":
        children = [loc for s in root if _local(s.tag) == "sitemap" and (loc := _child_text(s, "loc"))]
        return Listing("sitemap-index", None, None, (), tuple(urljoin(url, c) for c in children))
    items = []
    for entry in root:
        if _local(entry.tag) != "url" or not (loc := _child_text(entry, "loc")):
            continue
        when = _child_text(entry, "publication_date") or _child_text(entry, "lastmod")
        published, note = _iso_date(when)
        items.append(
            Item(
                url=urljoin(url, loc),
                title=_child_text(entry, "title"),
                published=published,
                date_note=note,
                language=_child_text(entry, "language"),
                outlet=_child_text(entry, "name"),
            )
        )
    return Listing("sitemap", None, None, newest_first(items))


def _text(value: object) -> str | None:
    if not isinstance(value, str | int | float):
        return None
    text = " ".join(str(value).split())
    return text or None
