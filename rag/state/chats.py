"""Conversations kept in the state database: each chat's turns with their answers, outcomes, citations and the index
version they came from; a saved citation tells later whether its article changed or left the index."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from rag.errors import RagError
from rag.retrieve.followup import Turn
from rag.state.db import StateDB
from rag.types import Article

TITLE_MAX = 200


class ChatNotFoundError(RagError):
    """No chat of that id belongs to the caller."""


def now() -> str:
    """The time, UTC, to the second: 2026-12-05T11:20:03Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Chat:
    """One conversation: who owns it (a login's e-mail, an API key's name, "" on a page without login), its title,
    when it began and last changed, and how many turns it holds."""

    id: str
    owner: str
    title: str
    created: str
    updated: str
    turns: int = 0

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "owner"}


@dataclass(frozen=True, slots=True)
class SavedSource:
    """A cited passage as the answer showed it, kept with the turn: where it was and the article's fingerprint
    then, so a later reader learns when the article changed or left the index."""

    n: int
    article_id: str
    chunk_id: str
    sha256: str | None  # the article's fingerprint when the answer was given (None: the index did not know it)
    text: str  # the passage's text then
    title: str
    outlet: str | None = None
    published: str | None = None
    url: str | None = None
    supported: bool | None = None


@dataclass(frozen=True, slots=True)
class SavedTurn:
    """One question and its answer: the answer's text and outcome, the index version it came from, the answer's
    JSON (as `rag ask --json`), its cited passages, and what the page shows of it (None: asked through the API)."""

    chat_id: str
    n: int
    question: str
    answer: str
    outcome: str
    index_version: str | None
    asked_at: str
    data: Mapping[str, Any]
    sources: tuple[SavedSource, ...]
    page: Mapping[str, Any] | None = None


def source_status(source: SavedSource, articles: Mapping[str, Article]) -> str:
    """ "" while the cited article is unchanged in the index; else what happened to it since the answer."""
    article = articles.get(source.article_id)
    if article is None:
        return (
            f"The article of [{source.n}] ({source.title}) is no longer in the index: the passage shown is the copy "
            "saved with this chat."
        )
    if source.sha256 and article.sha256 != source.sha256:
        still = (
            " It still holds the cited passage."
            if source.text and source.text in article.text
            else (" The cited passage is no longer in it: the passage shown is the copy saved with this chat.")
        )
        return f"The article of [{source.n}] ({source.title}) changed since this answer.{still}"
    return ""


def _turn(row: Any) -> SavedTurn:
    return SavedTurn(
        chat_id=row["chat_id"],
        n=row["n"],
        question=row["question"],
        answer=row["answer"],
        outcome=row["outcome"],
        index_version=row["index_version"],
        asked_at=row["asked_at"],
        data=json.loads(row["data"]),
        sources=tuple(SavedSource(**s) for s in json.loads(row["sources"])),
        page=json.loads(row["page"]) if row["page"] else None,
    )


def _chat(row: Any) -> Chat:
    return Chat(row["id"], row["owner"], row["title"], row["created"], row["updated"], row["turns"])


def clean_title(title: str) -> str:
    """A chat title on one line, at most TITLE_MAX characters; an empty one is an error."""
    flat = " ".join(title.split())
    if not flat:
        raise RagError("A chat title cannot be empty: give it a few words.")
    return flat if len(flat) <= TITLE_MAX else flat[: TITLE_MAX - 1] + "…"


_CHATS = "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.chat_id = c.id) AS turns FROM chats c"


class ChatStore:
    """The chats of the state database, each visible to its owner only."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def create(self, owner: str, title: str) -> Chat:
        """A new, empty chat."""
        chat_id, stamp = secrets.token_urlsafe(9), now()
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO chats (id, owner, title, created, updated) VALUES (?, ?, ?, ?, ?)",
                (chat_id, owner, clean_title(title), stamp, stamp),
            )
        return Chat(chat_id, owner, clean_title(title), stamp, stamp, 0)

    def chats(self, owner: str, limit: int = 200) -> list[Chat]:
        """The owner's chats, the most recently changed first."""
        with self.db.connect() as conn:
            rows = conn.execute(f"{_CHATS} WHERE owner = ? ORDER BY updated DESC, id LIMIT ?", (owner, limit))
            return [_chat(r) for r in rows]

    def get(self, chat_id: str, owner: str) -> Chat:
        """The chat, if it is the owner's."""
        with self.db.connect() as conn:
            row = conn.execute(f"{_CHATS} WHERE id = ? AND owner = ?", (chat_id, owner)).fetchone()
        if row is None:
            raise ChatNotFoundError(f"No chat {chat_id!r} here: it was deleted, or it belongs to someone else.")
        return _chat(row)

    def rename(self, chat_id: str, owner: str, title: str) -> Chat:
        with self.db.connect() as conn:
            done = conn.execute(
                "UPDATE chats SET title = ?, updated = ? WHERE id = ? AND owner = ?",
                (clean_title(title), now(), chat_id, owner),
            ).rowcount
        if not done:
            raise ChatNotFoundError(f"No chat {chat_id!r} here: it was deleted, or it belongs to someone else.")
        return self.get(chat_id, owner)

    def delete(self, chat_id: str, owner: str) -> None:
        """The chat and its turns, gone."""
        with self.db.connect() as conn:
            done = conn.execute("DELETE FROM chats WHERE id = ? AND owner = ?", (chat_id, owner)).rowcount
        if not done:
            raise ChatNotFoundError(f"No chat {chat_id!r} here: it was deleted, or it belongs to someone else.")

    def add_turn(
        self,
        chat_id: str,
        owner: str,
        question: str,
        data: Mapping[str, Any],
        sources: Sequence[SavedSource],
        *,
        index_version: str | None = None,
        page: Mapping[str, Any] | None = None,
    ) -> SavedTurn:
        """Append a finished answer (its JSON `data`, as `rag ask --json`) to the owner's chat."""
        stamp = now()
        answer = data.get("answer") or ""
        outcome = data.get("outcome") or ("failed" if data.get("answer") is None else "answer")
        with self.db.connect() as conn:
            if not conn.execute("SELECT 1 FROM chats WHERE id = ? AND owner = ?", (chat_id, owner)).fetchone():
                raise ChatNotFoundError(f"No chat {chat_id!r} here: it was deleted, or it belongs to someone else.")
            n = conn.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE chat_id = ?", (chat_id,)).fetchone()[0]
            conn.execute(
                "INSERT INTO turns (chat_id, n, question, answer, outcome, index_version, asked_at, data, sources, "
                "page) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chat_id,
                    n,
                    question,
                    answer,
                    outcome,
                    index_version,
                    stamp,
                    json.dumps(data, ensure_ascii=False),
                    json.dumps([asdict(s) for s in sources], ensure_ascii=False),
                    json.dumps(page, ensure_ascii=False) if page is not None else None,
                ),
            )
            conn.execute("UPDATE chats SET updated = ? WHERE id = ?", (stamp, chat_id))
        return SavedTurn(chat_id, n, question, answer, outcome, index_version, stamp, data, tuple(sources), page)

    def turns(self, chat_id: str, owner: str) -> tuple[SavedTurn, ...]:
        """The chat's turns, oldest first."""
        self.get(chat_id, owner)
        with self.db.connect() as conn:
            rows = conn.execute("SELECT * FROM turns WHERE chat_id = ? ORDER BY n", (chat_id,)).fetchall()
        return tuple(_turn(r) for r in rows)

    def history(self, chat_id: str, owner: str) -> tuple[Turn, ...]:
        """The chat's answered turns as the conversation a follow-up is read with."""
        return tuple(
            Turn(t.question, t.answer) for t in self.turns(chat_id, owner) if t.answer and t.outcome != "failed"
        )


def saved_sources(sources: Sequence[Any]) -> tuple[SavedSource, ...]:
    """What a turn keeps of an answer view's sources (rag.answer.view.Source)."""
    return tuple(
        SavedSource(
            n=s.n,
            article_id=s.chunk.article_id,
            chunk_id=s.chunk.id,
            sha256=s.article.sha256 if s.article else None,
            text=s.chunk.text,
            title=s.title,
            outlet=s.outlet,
            published=s.published,
            url=s.url,
            supported=s.supported,
        )
        for s in sources
    )
