"""API keys for `rag serve`: each has a name, is stored as its SHA-256 only (the key itself is shown once, when
made), and can be revoked."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from rag.errors import RagError
from rag.state.chats import now
from rag.state.db import StateDB

PREFIX = "rag_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: its name, the first characters of the key (to tell keys apart), when made and revoked."""

    name: str
    hint: str
    created: str
    revoked: str | None = None


def digest(key: str) -> str:
    """The SHA-256 the database keeps of a key (a key is 256 random bits: no salt or slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The API keys of the state database."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(self, name: str) -> str:
        """A new key named `name`; returns the key itself, which is never stored nor shown again."""
        if not _NAME.fullmatch(name):
            raise RagError(
                f"Invalid key name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-', e.g. `rag keys add "
                "slack-bot`."
            )
        key = PREFIX + secrets.token_urlsafe(32)
        with self.db.connect() as conn:
            row = conn.execute("SELECT revoked FROM api_keys WHERE name = ?", (name,)).fetchone()
            if row is not None and row["revoked"] is None:
                raise RagError(
                    f"A key named {name!r} exists: revoke it first (`rag keys revoke {name}`) or pick another name."
                )
            conn.execute("DELETE FROM api_keys WHERE name = ?", (name,))
            conn.execute(
                "INSERT INTO api_keys (name, digest, hint, created) VALUES (?, ?, ?, ?)",
                (name, digest(key), key[: len(PREFIX) + 4] + "…", now()),
            )
        return key

    def keys(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        with self.db.connect() as conn:
            rows = conn.execute("SELECT name, hint, created, revoked FROM api_keys ORDER BY created, name")
            return [ApiKey(r["name"], r["hint"], r["created"], r["revoked"]) for r in rows]

    def revoke(self, name: str) -> None:
        with self.db.connect() as conn:
            done = conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL", (now(), name)
            ).rowcount
        if not done:
            raise RagError(f"No active key named {name!r}: `rag keys list` shows the keys.")

    def active(self) -> int:
        """How many keys are not revoked."""
        with self.db.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked IS NULL").fetchone()[0])

    def made(self) -> int:
        """How many keys were ever made, revoked ones too (once a desk uses keys, revoking them all does not open
        the API again)."""
        with self.db.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0])

    def owner(self, key: str) -> str | None:
        """The name of the active key `key`, or None."""
        wanted = digest(key)
        with self.db.connect() as conn:
            row = conn.execute("SELECT name, digest FROM api_keys WHERE digest = ? AND revoked IS NULL", (wanted,))
            found = row.fetchone()
        return found["name"] if found and hmac.compare_digest(found["digest"], wanted) else None
