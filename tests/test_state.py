"""The state database's parts without models: chats, saved citations, exports, keys, the page's allow-list and
the API's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import RagError
from rag.serve.api import is_loopback
from rag.serve.limits import Limiter, TooManyRequestsError
from rag.state.access import page_owner, user_allowed
from rag.state.chats import ChatNotFoundError, ChatStore, SavedSource, source_status
from rag.state.db import StateDB
from rag.state.export import chat_json, chat_markdown
from rag.state.keys import KeyStore
from rag.types import Article

ARTICLE = Article("a1", "Lavrov in Beijing", "SeaPRwire", "نص المقال كله. والجملة المقتبسة هنا.", "f" * 64,
                  published="2023-03-21", url="https://example.org/a1")  # fmt: skip
SOURCE = SavedSource(1, "a1", "a1:0-30", "f" * 64, "والجملة المقتبسة هنا.", ARTICLE.title, "SeaPRwire",
                     "2023-03-21", "https://example.org/a1", True)  # fmt: skip


def test_source_status_unchanged_changed_vanished() -> None:
    assert source_status(SOURCE, {"a1": ARTICLE}) == ""
    edited = Article("a1", ARTICLE.title, "SeaPRwire", ARTICLE.text + " تصحيح.", "e" * 64)
    assert "changed since this answer. It still holds the cited passage." in source_status(SOURCE, {"a1": edited})
    rewritten = Article("a1", ARTICLE.title, "SeaPRwire", "نص آخر.", "e" * 64)
    assert "no longer in it" in source_status(SOURCE, {"a1": rewritten})
    assert "is no longer in the index" in source_status(SOURCE, {})


def test_chats_belong_to_their_owner(tmp_path: Path) -> None:
    store = ChatStore(StateDB(tmp_path))
    chat = store.create("user:a@desk.org", "  A  question\nover two lines ")
    assert chat.title == "A question over two lines"
    store.add_turn(chat.id, "user:a@desk.org", "Q?", {"answer": "A [1].", "outcome": "answer"}, (SOURCE,))
    with pytest.raises(ChatNotFoundError):
        store.turns(chat.id, "user:b@desk.org")
    with pytest.raises(ChatNotFoundError):
        store.add_turn(chat.id, "", "Q?", {"answer": "x"}, ())
    with pytest.raises(RagError, match="cannot be empty"):
        store.rename(chat.id, "user:a@desk.org", "   ")
    assert len(store.create("", "x" * 500).title) == 200
    assert [t.question for t in store.history(chat.id, "user:a@desk.org")] == ["Q?"]


def test_markdown_export_quotes_verbatim_with_outlet_date_link(tmp_path: Path) -> None:
    store = ChatStore(StateDB(tmp_path))
    chat = store.create("", "Lavrov")
    data = {
        "answer": "He arrived on Monday [1].",
        "outcome": "answer",
        "key_quotes": [{"n": 1, "quote": "والجملة المقتبسة هنا."}],
        "citations": [{"n": 1, "quote": "والجملة المقتبسة هنا."}],
    }
    store.add_turn(chat.id, "", "When did Lavrov arrive?", data, (SOURCE,), index_version="v-1")
    turns = store.turns(chat.id, "")
    text = chat_markdown(store.get(chat.id, ""), turns, {"a1": ARTICLE})
    assert "## 1. When did Lavrov arrive?" in text and "He arrived on Monday [1]." in text
    assert "> والجملة المقتبسة هنا. [1]" in text
    assert "- [1] Lavrov in Beijing · SeaPRwire · 2023-03-21 · https://example.org/a1" in text
    assert "index version v-1" in text and "⚠" not in text
    assert "⚠ The article of [1]" in chat_markdown(store.get(chat.id, ""), turns, {})
    exported = chat_json(store.get(chat.id, ""), turns, {})
    assert (
        exported["turns"][0]["answer"] == data
        and "no longer in the index" in exported["turns"][0]["sources"][0]["status"]
    )


def test_keys_are_hashed_named_and_revocable(tmp_path: Path) -> None:
    keys = KeyStore(StateDB(tmp_path))
    key = keys.add("bot")
    assert key.startswith("rag_") and keys.owner(key) == "bot" and keys.owner(key + "x") is None
    with pytest.raises(RagError, match="rag keys revoke bot"):
        keys.add("bot")
    keys.revoke("bot")
    assert keys.owner(key) is None and keys.active() == 0 and keys.made() == 1
    assert keys.keys()[0].revoked and keys.keys()[0].hint.endswith("…") and key not in keys.keys()[0].hint
    again = keys.add("bot")  # a revoked name can be used again, with a new key
    assert keys.owner(again) == "bot" and keys.owner(key) is None


def test_allowed_users_and_page_owner() -> None:
    assert user_allowed("anyone@x.org", "")
    assert user_allowed("Alice@Desk.org", "@desk.org, editor@freelance.net")
    assert user_allowed("editor@freelance.net", "@desk.org, editor@freelance.net")
    assert not user_allowed("other@freelance.net", "@desk.org, editor@freelance.net")
    assert not user_allowed(None, "@desk.org")
    assert page_owner({"email": "a@desk.org", "sub": "1"}) == "user:a@desk.org" and page_owner(None) == ""


def test_limiter_counts_running_and_per_minute() -> None:
    now = [0.0]
    limits = Limiter(concurrent=2, per_minute=3, clock=lambda: now[0])
    limits.acquire("k")
    limits.acquire("k")
    with pytest.raises(TooManyRequestsError, match="RAG_API_CONCURRENT"):
        limits.acquire("k")
    limits.acquire("other")  # each caller has its own
    limits.release("k")
    limits.acquire("k")
    limits.release("k")
    limits.release("k")
    with pytest.raises(TooManyRequestsError, match="RAG_API_PER_MINUTE") as over:
        limits.acquire("k")
    assert over.value.retry_after == 60
    now[0] = 60.5
    limits.acquire("k")


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "news.desk.org", "::"))
