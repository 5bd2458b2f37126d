"""A news site on loopback for the `rag sources` tests and `make bench`: fixture feeds (RSS, Atom, JSON Feed),
sitemaps and article pages written here, served by the standard library's HTTP server in a thread, with ETag and
Last-Modified (304), redirects, errors, slow answers, and a count of the requests each path got."""

from __future__ import annotations

import html
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before answering (a slow server)
    location: str | None = None  # a redirect (status 301/302)
    headers: dict[str, str] = field(default_factory=dict)
    later: Sequence[bytes] = ()  # the bodies of the 2nd, 3rd, ... request (the last one repeats): a feed that grows


@dataclass(frozen=True)
class Story:
    """An article a fixture feed points to."""

    path: str
    title: str
    paragraphs: Sequence[str]
    outlet: str = ""
    published: str | None = "2023-03-21T10:00:00+00:00"
    author: str | None = None
    canonical: str | None = None  # a path on this site, else the page's own


class Site:
    """Routes by path (the query string included); `requests[path]` counts what was asked."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: Counter[str] = Counter()
        self.server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8", **kw: object) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, content_type, **kw)  # type: ignore[arg-type]

    def page(self, story: Story) -> None:
        self.add(story.path, page_html(story, self.base))

    def start(self) -> Site:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                site.requests[self.path] += 1
                route = site.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.location:
                    self._send(route.status, b"", "text/plain", {"Location": route.location})
                    return
                if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                    route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
                ):
                    self._send(304, b"", route.content_type, self._validators(route))
                    return
                n = site.requests[self.path] - 2
                body = route.later[min(n, len(route.later) - 1)] if route.later and n >= 0 else route.body
                self._send(route.status, body, route.content_type, self._validators(route) | route.headers)

            def _validators(self, route: Route) -> dict[str, str]:
                found = {}
                if route.etag:
                    found["ETag"] = route.etag
                if route.last_modified:
                    found["Last-Modified"] = route.last_modified
                return found

            def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    if status != 304:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a time-out test)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (a time-out test) is no news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def serving() -> Iterator[Site]:
    site = Site().start()
    try:
        yield site
    finally:
        site.stop()


def page_html(story: Story, base: str) -> str:
    """An article page as news sites write them: a head with Open Graph tags, a menu, the article, a footer."""
    e = html.escape
    meta = [f'<meta property="og:title" content="{e(story.title)}">']
    if story.outlet:
        meta.append(f'<meta property="og:site_name" content="{e(story.outlet)}">')
    if story.published:
        meta.append(f'<meta property="article:published_time" content="{e(story.published)}">')
    if story.canonical:
        meta.append(f'<link rel="canonical" href="{e(base + story.canonical)}">')
    body = "\n".join(f"<p>{e(p)}</p>" for p in story.paragraphs)
    return (
        f'<!doctype html>\n<html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{e(story.title)}</title>\n'
        + "\n".join(meta)
        + "\n</head><body><nav><a href='/'>الرئيسية</a> <a href='/world'>العالم</a> <a href='/sport'>رياضة</a></nav>"
        + f"<main><article><h1>{e(story.title)}</h1>\n{body}\n</article></main>"
        + "<footer>جميع الحقوق محفوظة</footer></body></html>"
    )


def rss(title: str, base: str, stories: Sequence[Story], language: str = "ar") -> str:
    e = html.escape
    items = []
    for s in stories:
        date = f"<pubDate>{_rfc822(s.published)}</pubDate>" if s.published else ""
        author = f"<author>{e(s.author)}</author>" if s.author else ""
        items.append(
            f"<item><title>{e(s.title)}</title><link>{e(base + s.path)}</link><guid>{e(base + s.path)}</guid>"
            f"{date}{author}<description>{e(s.paragraphs[0][:200])}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{e(title)}</title><link>{e(base)}/</link><language>{language}</language>"
        f"<description>{e(title)}</description>{''.join(items)}</channel></rss>"
    )


def atom(title: str, base: str, stories: Sequence[Story]) -> str:
    e = html.escape
    entries = []
    for s in stories:
        date = f"<published>{e(s.published)}</published><updated>{e(s.published)}</updated>" if s.published else ""
        date += f"<author><name>{e(s.author)}</name></author>" if s.author else ""
        entries.append(
            f'<entry><title>{e(s.title)}</title><link rel="alternate" href="{e(base + s.path)}"/>'
            f"<id>{e(base + s.path)}</id>{date}<summary>{e(s.paragraphs[0][:200])}</summary></entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar">'
        f"<title>{e(title)}</title><id>{e(base)}/atom</id><updated>2023-03-21T10:00:00Z</updated>"
        f"{''.join(entries)}</feed>"
    )


def json_feed(title: str, base: str, stories: Sequence[Story]) -> str:
    items = []
    for s in stories:
        item: dict[str, object] = {"id": base + s.path, "url": base + s.path, "title": s.title}
        if s.published:
            item["date_published"] = s.published
        if s.author:
            item["authors"] = [{"name": s.author}]
        items.append(item)
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": title, "language": "ar", "items": items}
    return json.dumps(feed, ensure_ascii=False)


def sitemap(base: str, stories: Sequence[Story]) -> str:
    urls = []
    for s in stories:
        lastmod = f"<lastmod>{s.published[:10]}</lastmod>" if s.published else ""
        urls.append(f"<url><loc>{html.escape(base + s.path)}</loc>{lastmod}</url>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{''.join(urls)}</urlset>"
    )


def _rfc822(iso: str) -> str:
    from datetime import datetime
    from email.utils import format_datetime

    try:
        return format_datetime(datetime.fromisoformat(iso))
    except ValueError:
        return iso  # a bad date, written as given (a test of bad dates)
