"""The text side of an index version: articles and chunks in SQLite, sentence spans in a memory-mapped array.

Nothing is read at load but the file headers: a chunk or article is fetched when a question needs it, so a version
of a million chunks loads as fast as one of five articles and holds only what was asked for.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from rag.files import mapped_rows
from rag.text.arabic import fold
from rag.types import Article, Chunk, Filter, Sentence, Statement

DATABASE = "records.sqlite"  # articles (by id, in build order) and chunks (by position)
SENTENCES = "sentence_spans.i64"  # raw int64 rows (chunk position, start, end), grouped by chunk in chunk order

_SCHEMA = """
CREATE TABLE articles (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, outlet TEXT,
                       text TEXT NOT NULL, sha256 TEXT NOT NULL, published TEXT, url TEXT, language TEXT,
                       author TEXT);
CREATE TABLE chunks (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, article_id TEXT NOT NULL, text TEXT NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL);
CREATE INDEX chunks_by_article ON chunks (article_id, n);
CREATE TABLE statements (n INTEGER PRIMARY KEY, article_id TEXT NOT NULL, start INTEGER NOT NULL,
                         end INTEGER NOT NULL, speaker TEXT NOT NULL, speaker_key TEXT NOT NULL, role TEXT NOT NULL,
                         kind TEXT NOT NULL, cue TEXT NOT NULL);
CREATE INDEX statements_by_speaker ON statements (speaker_key);
CREATE INDEX statements_by_article ON statements (article_id, start);
"""


_ARTICLE_COLUMNS = "id, title, outlet, text, sha256, published, url, language, author"  # Article's fields, in order


class RecordWriter:
    """Appends a version's records batch by batch; chunk positions and sentence rows continue across batches."""

    def __init__(self, folder: Path) -> None:
        self._db = sqlite3.connect(folder / DATABASE)
        self._db.executescript(_SCHEMA)
        self._spans = (folder / SENTENCES).open("wb")
        self.articles = 0
        self.chunks = 0
        self.sentences = 0
        self.statements = 0

    def add(
        self,
        articles: Sequence[Article],
        chunks: Sequence[Chunk],
        sentences: Sequence[Sentence],
        statements: Sequence[Statement] = (),
    ) -> None:
        """A batch: its articles, their chunks, the chunks' sentences (`chunk` counted within the batch) and the
        statements found in the articles."""
        self._db.executemany(
            "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (self.articles + n, a.id, a.title, a.outlet, a.text, a.sha256, a.published, a.url, a.language, a.author)
                for n, a in enumerate(articles)
            ),
        )
        self._db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            ((self.chunks + n, c.id, c.article_id, c.text, c.start, c.end) for n, c in enumerate(chunks)),
        )
        self._db.executemany(
            "INSERT INTO statements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (self.statements + n, s.article_id, s.start, s.end, s.speaker, speaker_key(s.speaker), s.role, s.kind,
                 s.cue)
                for n, s in enumerate(statements)
            ),
        )  # fmt: skip
        self.statements += len(statements)
        spans = np.array([(self.chunks + s.chunk, s.start, s.end) for s in sentences], dtype=np.int64)
        self._spans.write(spans.reshape(-1, 3).tobytes())
        self.articles += len(articles)
        self.chunks += len(chunks)
        self.sentences += len(sentences)

    def close(self) -> list[str]:
        """Commit; the names of the files written."""
        self._db.commit()
        self._db.close()
        self._spans.close()
        return [DATABASE, SENTENCES]


def write_records(
    folder: Path,
    articles: Sequence[Article],
    chunks: Sequence[Chunk],
    sentences: Sequence[Sentence],
    statements: Sequence[Statement] = (),
) -> list[str]:
    """Write a version's records in one batch; the names of the files."""
    writer = RecordWriter(folder)
    writer.add(articles, chunks, sentences, statements)
    return writer.close()


def speaker_key(speaker: str) -> str:
    """A speaker's name as it is looked up: folded, one space between words."""
    return " ".join(fold(speaker).split())


class Records:
    """A version's records, read on demand. One read-only connection, shared by the threads that ask (the page
    serves several sessions from one loaded index), opened at load so that the version's removal by a later
    build cannot take it away."""

    def __init__(self, folder: Path) -> None:
        uri = f"file:{folder / DATABASE}?mode=ro&immutable=1"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.spans = mapped_rows(folder / SENTENCES, np.int64, 3)
        self.chunks = _Chunks(self)
        self.sentences = _Sentences(self.spans)
        self.articles = _Articles(self)
        self.titles = _Titles(self)
        self._dates: tuple[str | None, str | None, int] | None = None
        self._outlets: dict[str, int] | None = None
        self._has_statements: bool | None = None

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 (our own table names)

    def position(self, chunk_id: str) -> int | None:
        """The position of the chunk with this id, None when the index has no such chunk."""
        rows = self.query("SELECT n FROM chunks WHERE id = ?", (chunk_id,))
        return int(rows[0][0]) if rows else None

    def outlets(self) -> dict[str, int]:
        """Articles per outlet, most first (articles of no known outlet are not counted); read once, like the
        dates (the page asks at every rerun, each new filter asks)."""
        if self._outlets is None:
            rows = self.query(
                "SELECT outlet, COUNT(*) FROM articles WHERE outlet IS NOT NULL GROUP BY outlet ORDER BY 2 DESC, 1"
            )
            self._outlets = {str(name): int(n) for name, n in rows}
        return dict(self._outlets)

    def dates(self) -> tuple[str | None, str | None, int]:
        """The first and last day an article was published (None when none is dated) and how many are undated
        (read once: a version's records do not change)."""
        if self._dates is None:
            self._dates = self._read_dates()
        return self._dates

    def _read_dates(self) -> tuple[str | None, str | None, int]:
        first, last, undated = self.query(
            "SELECT MIN(substr(published, 1, 10)), MAX(substr(published, 1, 10)), SUM(published IS NULL) FROM articles"
        )[0]
        return first, last, int(undated or 0)

    def matching(self, scope: Filter) -> tuple[tuple[str, ...], np.ndarray]:
        """The ids of the articles a filter keeps (build order) and the positions of their chunks (sorted).
        Outlet names must be as stored (`VectorIndex.where_filter` resolves what was typed)."""
        clauses, args = [], []
        if scope.since:
            clauses.append("substr(a.published, 1, 10) >= ?")
            args.append(scope.since)
        if scope.until:
            clauses.append("substr(a.published, 1, 10) <= ?")
            args.append(scope.until)
        for column, values in (("a.outlet", scope.outlets), ("a.id", scope.articles)):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        where = " AND ".join(clauses) or "1"
        ids = tuple(
            str(r[0]) for r in self.query(f"SELECT a.id FROM articles a WHERE {where} ORDER BY a.n", tuple(args))
        )  # noqa: S608 (our clauses, values bound)
        rows = self.query(
            f"SELECT c.n FROM chunks c JOIN articles a ON a.id = c.article_id WHERE {where} ORDER BY c.n",  # noqa: S608
            tuple(args),
        )
        return ids, np.array([r[0] for r in rows], dtype=np.int64)

    def published_of(self, positions: np.ndarray) -> list[str | None]:
        """The publication day of each chunk's article (None when undated), in the order given."""
        found: dict[int, str | None] = {}
        wanted = [int(p) for p in positions]
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            rows = self.query(
                "SELECT c.n, substr(a.published, 1, 10) FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"WHERE c.n IN ({', '.join('?' * len(part))})",  # noqa: S608
                tuple(part),
            )
            found.update((int(n), published) for n, published in rows)
        return [found.get(p) for p in wanted]

    @property
    def has_statements(self) -> bool:
        """False for a version written before statements were found (`rag index update` finds them)."""
        if self._has_statements is None:
            found = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'statements'")
            self._has_statements = bool(found)
        return self._has_statements

    def speakers(self) -> list[tuple[str, str, int]]:
        """Every speaker (name, kind) with the number of their statements, most first."""
        rows = self.query("SELECT speaker, kind, COUNT(*) FROM statements GROUP BY speaker, kind ORDER BY 3 DESC, 1")
        return [(str(a), str(b), int(c)) for a, b, c in rows]

    def statements_by(self, speakers: Sequence[str]) -> list[Statement]:
        """The statements of these speakers (names as stored), in build order."""
        keys = sorted({speaker_key(s) for s in speakers})
        out: list[Statement] = []
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            out += [
                Statement(*row)
                for row in self.query(
                    "SELECT article_id, start, end, speaker, role, kind, cue FROM statements "
                    f"WHERE speaker_key IN ({', '.join('?' * len(part))}) ORDER BY n",  # noqa: S608
                    tuple(part),
                )
            ]
        return out

    def statements_of(self, article_id: str) -> list[Statement]:
        """An article's statements, in text order (none in a version written before statements were found)."""
        if not self.has_statements:
            return []
        rows = self.query(
            "SELECT article_id, start, end, speaker, role, kind, cue FROM statements WHERE article_id = ? "
            "ORDER BY start, n",
            (article_id,),
        )
        return [Statement(*row) for row in rows]

    def positions_of(self, article_id: str) -> list[int]:
        """The positions of an article's chunks, in text order."""
        return [int(r[0]) for r in self.query("SELECT n FROM chunks WHERE article_id = ? ORDER BY n", (article_id,))]


def _chunk(row: tuple[Any, ...]) -> Chunk:
    return Chunk(*row)


class _Chunks(Sequence[Chunk]):
    """The chunks by position."""

    def __init__(self, records: Records) -> None:
        self._records = records
        self._n = records.count("chunks")

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Chunk: ...
    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...
    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        rows = self._records.query("SELECT id, article_id, text, start, end FROM chunks WHERE n = ?", (i % self._n,))
        return _chunk(rows[0])

    def many(self, positions: Sequence[int]) -> list[Chunk]:
        """The chunks at these positions, in that order, read in one query per 500 (not one per chunk)."""
        found: dict[int, Chunk] = {}
        wanted = sorted({int(p) % self._n for p in positions}) if self._n else []
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._records.query(
                f"SELECT n, id, article_id, text, start, end FROM chunks WHERE n IN ({marks})",  # noqa: S608
                tuple(part),
            )
            found |= {int(row[0]): _chunk(row[1:]) for row in rows}
        return [found[int(p) % self._n] for p in positions]

    def __iter__(self) -> Iterator[Chunk]:
        for start in range(0, self._n, 10_000):
            rows = self._records.query(
                "SELECT id, article_id, text, start, end FROM chunks WHERE n >= ? AND n < ? ORDER BY n",
                (start, start + 10_000),
            )
            yield from map(_chunk, rows)


class _Sentences(Sequence[Sentence]):
    """The sentences by row: (chunk position, article start, article end)."""

    def __init__(self, spans: np.ndarray) -> None:
        self._spans = spans

    def __len__(self) -> int:
        return int(self._spans.shape[0])

    @overload
    def __getitem__(self, i: int) -> Sentence: ...
    @overload
    def __getitem__(self, i: slice) -> list[Sentence]: ...
    def __getitem__(self, i: int | slice) -> Sentence | list[Sentence]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        chunk, start, end = (int(v) for v in self._spans[i])
        return Sentence(chunk, start, end)


class _Articles(Mapping[str, Article]):
    """The articles by id, in build order."""

    def __init__(self, records: Records) -> None:
        self._records = records
        self._n = records.count("articles")

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, article_id: str) -> Article:
        rows = self._records.query(f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,))
        if not rows:
            raise KeyError(article_id)
        return Article(*rows[0])

    def __contains__(self, article_id: object) -> bool:
        return bool(self._records.query("SELECT 1 FROM articles WHERE id = ?", (article_id,)))

    def __iter__(self) -> Iterator[str]:
        return iter([str(r[0]) for r in self._records.query("SELECT id FROM articles ORDER BY n")])


class _Titles(Mapping[str, str]):
    """Article titles by id (without fetching the articles' text)."""

    def __init__(self, records: Records) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records.articles)

    def __getitem__(self, article_id: str) -> str:
        rows = self._records.query("SELECT title FROM articles WHERE id = ?", (article_id,))
        if not rows:
            raise KeyError(article_id)
        return str(rows[0][0])

    def __iter__(self) -> Iterator[str]:
        return iter(self._records.articles)
