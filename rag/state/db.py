"""The state database: one SQLite file (`<RAG_STATE_DIR>/state.db`) in WAL mode, shared by the page, `rag serve`,
`rag keys`, `rag sources` and `rag watch`; every write is one short transaction, so several processes write
without corrupting it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import RagError

FILE = "state.db"
BUSY_MS = 30_000  # a writer waits this long for another's transaction before failing (each lasts milliseconds)
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chats_by_owner ON chats (owner, updated);
CREATE TABLE IF NOT EXISTS turns (
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    outcome TEXT NOT NULL,
    index_version TEXT,
    asked_at TEXT NOT NULL,
    data TEXT NOT NULL,
    sources TEXT NOT NULL,
    page TEXT,
    PRIMARY KEY (chat_id, n)
);
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created TEXT NOT NULL,
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    title TEXT,
    outlet TEXT,
    added TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    pulled TEXT,
    status TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS items (
    url TEXT PRIMARY KEY,
    source_id INTEGER,
    state TEXT NOT NULL,
    article_id TEXT,
    canonical TEXT,
    text_sha TEXT,
    outlet TEXT,
    tries INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    fetched TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_canonical ON items (canonical);
CREATE INDEX IF NOT EXISTS items_by_text ON items (text_sha);
CREATE INDEX IF NOT EXISTS items_by_article ON items (article_id);
CREATE TABLE IF NOT EXISTS watches (
    id INTEGER PRIMARY KEY,
    question TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    checked TEXT
);
CREATE TABLE IF NOT EXISTS watch_hits (
    watch_id INTEGER NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
    article_id TEXT NOT NULL,
    found TEXT NOT NULL,
    confidence REAL,
    chunk_id TEXT,
    start INTEGER,
    end INTEGER,
    quote TEXT,
    PRIMARY KEY (watch_id, article_id)
);
CREATE TABLE IF NOT EXISTS watch_seen (
    owner TEXT NOT NULL,
    watch_id INTEGER NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
    seen TEXT NOT NULL,
    PRIMARY KEY (owner, watch_id)
);
"""


class StateDB:
    """The state folder's database: `connect()` gives a connection inside one transaction (committed on leaving,
    rolled back on an error)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE
        self._ready = False

    def _open(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise RagError(
                f"Cannot open the state database {self.path}: {exc}. Make RAG_STATE_DIR a writable folder."
            ) from exc
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self._ready:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(SCHEMA)
                found = conn.execute("PRAGMA user_version").fetchone()[0]
                if found > SCHEMA_VERSION:
                    raise RagError(
                        f"The state database {self.path} was written by a newer version of this tool (schema "
                        f"{found}, this one reads {SCHEMA_VERSION}): upgrade, or point RAG_STATE_DIR elsewhere."
                    )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise RagError(
                    f"The state database {self.path} is not readable ({exc}): move it aside and start again, or "
                    "point RAG_STATE_DIR elsewhere."
                ) from exc
            self._ready = True
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at each checkpoint, never corrupt
        return conn

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One connection in one transaction (BEGIN IMMEDIATE: a writer takes the lock up front, no upgrade
        deadlock)."""
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise RagError(f"The state database {self.path} is busy or failed ({exc}): try again.") from exc
        finally:
            conn.close()
