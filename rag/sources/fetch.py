"""The polite fetcher of `rag sources pull`: robots.txt obeyed, one request at a time per host with a pause
between them (the robots' Crawl-delay when it is longer), conditional GET (ETag, Last-Modified), time-outs, a size
limit, bounded redirects and bounded retries of what may pass (time-outs, 429, 5xx). Every failure is a FetchError
whose message names the address and what went wrong."""

from __future__ import annotations

import gzip
import io
import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

USER_AGENT = "rag-news/0.1 (news archive reader)"  # RAG_SOURCES_USER_AGENT's default too
MAX_REDIRECTS = 5
_RETRIED = frozenset({429, 500, 502, 503, 504})
_RETRY_AFTER_CAP = 30.0  # seconds: a longer Retry-After is a note for the next pull, not a wait


class FetchError(Exception):
    """A fetch that failed; the message names the address."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response: `status` 200 with `body`, or 304 (not modified since the validators sent) with none."""

    url: str  # as asked
    final_url: str  # after redirects
    status: int
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class Politeness:
    """How the fetcher treats a server: pause between two requests to one host, time-out per request, largest
    body read, retries after a failure that may pass, and the User-Agent it names itself with."""

    delay: float = 1.0
    timeout: float = 20.0
    max_bytes: int = 5 * 1024 * 1024
    retries: int = 2
    user_agent: str = USER_AGENT


class Fetcher:
    """Fetches pages and feeds politely (see the module docstring). `sleep` and `clock` are injectable for tests;
    `client` too (an httpx.Client, e.g. with a mock transport)."""

    def __init__(
        self,
        politeness: Politeness | None = None,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = politeness or Politeness()
        self.client = client or httpx.Client(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(self.rules.timeout),
            headers={"User-Agent": self.rules.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self.sleep = sleep
        self.clock = clock
        self._last: dict[str, float] = {}  # host -> when its last request ended
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}  # host -> rules, or why none
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _host(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise FetchError(f"{url}: not an http(s) address; give one such as https://example.com/feed.xml")
        return f"{parts.scheme}://{parts.netloc}"

    def _robots_for(self, host: str) -> urllib.robotparser.RobotFileParser:
        """The host's robots.txt, fetched once per Fetcher. Missing (4xx): everything allowed. Unreachable or
        5xx: nothing allowed this time (RFC 9309 section 2.3.1.4)."""
        found = self._robots.get(host)
        if found is None:
            rules = urllib.robotparser.RobotFileParser(host + "/robots.txt")
            try:
                got = self._request(host + "/robots.txt", {}, host)
                rules.parse(got.body.decode("utf-8", "replace").splitlines())
                found = rules
            except _HttpStatus as exc:
                if 400 <= exc.status < 500:
                    rules.parse([])
                    found = rules
                else:
                    found = f"its robots.txt answered {exc.status}; trying again next pull"
            except FetchError as exc:
                found = f"its robots.txt could not be read ({exc}); trying again next pull"
            self._robots[host] = found
        if isinstance(found, str):
            raise FetchError(f"{host}: {found}")
        return found

    def _wait_turn(self, host: str, rules: urllib.robotparser.RobotFileParser | None) -> None:
        delay = self.rules.delay
        if rules is not None:
            crawl = rules.crawl_delay(self.rules.user_agent)
            if crawl:
                delay = max(delay, min(float(crawl), 60.0))
        last = self._last.get(host)
        if last is not None:
            wait = last + delay - self.clock()
            if wait > 0:
                self.sleep(wait)

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """GET `url` (with the validators of the last response, for a 304 when unchanged); FetchError otherwise."""
        host = self._host(url)
        rules = self._robots_for(host)
        if not rules.can_fetch(self.rules.user_agent, url):
            raise FetchError(f"{url}: the site's robots.txt does not allow fetching it")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            return self._request(url, headers, host, rules)
        except _HttpStatus as exc:
            raise FetchError(f"{url}: the server answered {exc.status}{exc.hint}") from None

    def _request(
        self, url: str, headers: dict[str, str], host: str, rules: urllib.robotparser.RobotFileParser | None = None
    ) -> Fetched:
        attempt = 0
        while True:
            self._wait_turn(host, rules)
            try:
                return self._once(url, headers)
            except _Passing as exc:
                attempt += 1
                if attempt > self.rules.retries:
                    if exc.status:
                        raise _HttpStatus(exc.status, f" ({attempt} tries)") from None
                    raise FetchError(f"{url}: {exc.reason} ({attempt} tries)") from None
                self.sleep(min(exc.retry_after or 0.5 * 2 ** (attempt - 1), _RETRY_AFTER_CAP))
            finally:
                self._last[host] = self.clock()

    def _once(self, url: str, headers: dict[str, str]) -> Fetched:
        self.requests += 1
        started = self.clock()
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status in _RETRIED:
                    raise _Passing(f"the server answered {status}", status, _retry_after(response))
                if status == 304:
                    body = b""
                elif status >= 400:
                    raise _HttpStatus(status, _hint(status))
                else:
                    body = self._read(url, response, started)
                final = str(response.url)
                kind = response.headers.get("content-type", "")
                etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
        except httpx.TooManyRedirects:
            raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects (a redirect loop?)") from None
        except httpx.TimeoutException:
            raise _Passing(f"no answer within {self.rules.timeout:g} s", 0, None) from None
        except httpx.TransportError as exc:
            raise _Passing(f"cannot connect ({type(exc).__name__}: {exc})", 0, None) from None
        if body[:2] == b"\x1f\x8b":  # a .gz file (a sitemap.xml.gz), not a gzip transfer encoding
            try:
                body = _gunzip(body, self.rules.max_bytes)
            except (OSError, EOFError) as exc:
                raise FetchError(f"{url}: a broken gzip file ({exc})") from None
            except _TooBig:
                raise FetchError(f"{url}: over {self.rules.max_bytes:,} bytes once unpacked; skipped") from None
        return Fetched(url, final, status, body, kind, etag, modified)

    def _read(self, url: str, response: httpx.Response, started: float) -> bytes:
        limit = self.rules.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"{url}: {int(declared):,} bytes, over the {limit:,}-byte limit; skipped")
        parts: list[bytes] = []
        size = 0
        for part in response.iter_bytes():
            size += len(part)
            if size > limit:
                raise FetchError(f"{url}: over the {limit:,}-byte limit; skipped")
            if self.clock() - started > self.rules.timeout * 3:  # a server trickling bytes
                raise _Passing(f"still sending after {self.rules.timeout * 3:g} s", 0, None)
            parts.append(part)
        return b"".join(parts)


class _Passing(Exception):
    """A failure worth retrying: a time-out, a connection error, 429 or 5xx."""

    def __init__(self, reason: str, status: int, retry_after: float | None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after


class _HttpStatus(Exception):
    def __init__(self, status: int, hint: str = "") -> None:
        super().__init__(status)
        self.status, self.hint = status, hint


class _TooBig(Exception):
    pass


def _hint(status: int) -> str:
    return {
        401: " (it needs a login: this tool reads public pages only)",
        403: " (forbidden: the site refuses this reader)",
        404: " (not found: check the address)",
        410: " (gone: remove the source)",
    }.get(status, "")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _gunzip(data: bytes, limit: int) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out = f.read(limit + 1)
    if len(out) > limit:
        raise _TooBig
    return out
