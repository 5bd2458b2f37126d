"""The sources followed and the items seen, in the state database: a source's address, kind and validators (for
a 304 next time), and for every item address what became of it (stored as an article, a duplicate of one, or
failed with a note, retried on later pulls up to MAX_TRIES)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rag.errors import RagError
from rag.state.chats import now
from rag.state.db import StateDB

MAX_TRIES = 3  # pulls that try a failing item before it is left alone (`rag sources list` shows the note)
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ocid|ref|cmpid|at_\w+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Source:
    """A followed address: a feed, a sitemap or one page."""

    id: int
    url: str
    kind: str
    title: str | None
    outlet: str | None  # the outlet named with --outlet, preferred over what the feed and pages say
    added: str
    etag: str | None = None
    last_modified: str | None = None
    pulled: str | None = None
    status: str | None = None  # "ok", "not modified" or "failed" at the last pull
    note: str | None = None
    articles: int = 0  # items stored from it as articles


@dataclass(frozen=True, slots=True)
class SeenItem:
    """What became of an item address: "stored", "duplicate" (of `article_id`) or "failed"."""

    url: str
    state: str
    article_id: str | None
    tries: int
    note: str | None


def normal_url(url: str) -> str:
    """An address as items are told apart: scheme and host in lower case, no fragment, no tracking parameters
    (utm_*, fbclid, ...), no trailing slash on the path."""
    parts = urlsplit(url.strip())
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


class SourceStore:
    """The sources and items tables of the state database."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(self, url: str, kind: str, title: str | None, outlet: str | None = None) -> Source:
        with self.db.connect() as conn:
            if conn.execute("SELECT 1 FROM sources WHERE url = ?", (url,)).fetchone():
                raise RagError(f"{url} is already a source (`rag sources list`).")
            conn.execute(
                "INSERT INTO sources (url, kind, title, outlet, added) VALUES (?, ?, ?, ?, ?)",
                (url, kind, title, outlet, now()),
            )
        return self.get(url)

    def get(self, ref: str | int) -> Source:
        """A source by its number or address; RagError naming `rag sources list` when there is none."""
        for source in self.sources():
            if str(source.id) == str(ref) or source.url == ref:
                return source
        raise RagError(f"No source {ref!r}: `rag sources list` shows their numbers and addresses.")

    def sources(self) -> list[Source]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM items i WHERE i.source_id = s.id AND i.state = 'stored') AS n "
                "FROM sources s ORDER BY s.id"
            ).fetchall()
        return [
            Source(
                r["id"], r["url"], r["kind"], r["title"], r["outlet"], r["added"], r["etag"], r["last_modified"],
                r["pulled"], r["status"], r["note"], r["n"],
            )
            for r in rows
        ]  # fmt: skip

    def remove(self, ref: str | int) -> Source:
        """Stop following a source; its articles stay in the data folder and the index."""
        source = self.get(ref)
        with self.db.connect() as conn:
            conn.execute("DELETE FROM sources WHERE id = ?", (source.id,))
        return source

    def pulled(
        self,
        source: Source,
        status: str,
        note: str | None,
        etag: str | None = None,
        modified: str | None = None,
        forget_validators: bool = False,
    ) -> None:
        """Record a pull of `source`; the validators are kept from a response that had them, and forgotten when
        the listing must be read whole next time (items left for later, items to retry)."""
        with self.db.connect() as conn:
            if forget_validators:
                conn.execute("UPDATE sources SET etag = NULL, last_modified = NULL WHERE id = ?", (source.id,))
            conn.execute(
                "UPDATE sources SET pulled = ?, status = ?, note = ?, etag = COALESCE(?, etag), "
                "last_modified = COALESCE(?, last_modified) WHERE id = ?",
                (now(), status, note, etag, modified, source.id),
            )

    def item(self, url: str) -> SeenItem | None:
        with self.db.connect() as conn:
            row = conn.execute("SELECT * FROM items WHERE url = ?", (normal_url(url),)).fetchone()
        return None if row is None else SeenItem(row["url"], row["state"], row["article_id"], row["tries"], row["note"])

    def wanted(self, url: str) -> bool:
        """True when `url` was never stored nor found a duplicate, and has failed fewer than MAX_TRIES times."""
        return normal_url(url) not in self.settled([url])

    def settled(self, urls: list[str]) -> set[str]:
        """Of `urls`, those (normalized) not to fetch again: stored, duplicates, or failed MAX_TRIES times. One
        query per 500 addresses, so a sitemap of 50,000 is read in a moment."""
        found: set[str] = set()
        normal = list(dict.fromkeys(normal_url(u) for u in urls))
        with self.db.connect() as conn:
            for i in range(0, len(normal), 500):
                part = normal[i : i + 500]
                rows = conn.execute(
                    f"SELECT url FROM items WHERE url IN ({','.join('?' * len(part))}) "
                    "AND (state != 'failed' OR tries >= ?)",
                    (*part, MAX_TRIES),
                ).fetchall()
                found.update(r["url"] for r in rows)
        return found

    def duplicate_of(self, canonical: str, text_sha: str) -> str | None:
        """The article already stored under this canonical address or with this text, if any."""
        with self.db.connect() as conn:
            row = conn.execute(  # two indexed look-ups (an OR of the two columns would scan the table)
                "SELECT article_id FROM items WHERE state = 'stored' AND canonical = ? UNION ALL "
                "SELECT article_id FROM items WHERE state = 'stored' AND text_sha = ? LIMIT 1",
                (canonical, text_sha),
            ).fetchone()
        return row["article_id"] if row else None

    def stored(
        self, url: str, source: Source, article_id: str, canonical: str, text_sha: str, outlet: str | None
    ) -> None:
        self._put(url, source, "stored", article_id, canonical, text_sha, outlet, None)

    def duplicate(
        self, url: str, source: Source, article_id: str, canonical: str, text_sha: str, outlet: str | None
    ) -> None:
        self._put(url, source, "duplicate", article_id, canonical, text_sha, outlet, None)

    def failed(self, url: str, source: Source, note: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO items (url, source_id, state, tries, note, fetched) VALUES (?, ?, 'failed', 1, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET tries = tries + 1, note = excluded.note, fetched = excluded.fetched",
                (normal_url(url), source.id, note, now()),
            )

    def _put(
        self,
        url: str,
        source: Source,
        state: str,
        article_id: str,
        canonical: str,
        text_sha: str,
        outlet: str | None,
        note: str | None,
    ) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO items (url, source_id, state, article_id, canonical, text_sha, outlet, tries, "
                "note, fetched) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE((SELECT tries FROM items WHERE url = ?), 0), ?, ?)",
                (normal_url(url), source.id, state, article_id, canonical, text_sha, outlet, normal_url(url), note,
                 now()),
            )  # fmt: skip

    def also_reported_by(self, article_id: str) -> list[tuple[str, str]]:
        """The other outlets that carried the same story (outlet, address), besides the one stored."""
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT outlet, url FROM items WHERE article_id = ? AND state = 'duplicate' ORDER BY fetched",
                (article_id,),
            ).fetchall()
            first = conn.execute(
                "SELECT outlet FROM items WHERE article_id = ? AND state = 'stored'", (article_id,)
            ).fetchone()
        own = first["outlet"] if first else None
        seen: dict[str, str] = {}
        for r in rows:
            name = r["outlet"] or urlsplit(r["url"]).netloc
            if name != own and name not in seen:
                seen[name] = r["url"]
        return list(seen.items())

    def failures(self) -> list[SeenItem]:
        with self.db.connect() as conn:
            rows = conn.execute("SELECT * FROM items WHERE state = 'failed' ORDER BY fetched DESC").fetchall()
        return [SeenItem(r["url"], r["state"], r["article_id"], r["tries"], r["note"]) for r in rows]
