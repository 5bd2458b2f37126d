"""The HTTP API over real HTTP on loopback (uvicorn in a thread, httpx and the official openai client), with the
fake embedder and answer model: routes, streaming, chats, keys, limits and bad input."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from rag.config import Settings
from rag.serve.api import QUESTION_MAX, create_app
from rag.serve.archive import Archive
from rag.state.db import StateDB
from rag.state.keys import KeyStore

from .apitools import serve_app, sse_events
from .conftest import FakeChat, FakeEmbedder
from .helpers import FAKE_SPEC, build_fake

REPLY = "China says it controls the export of dual-use items according to the law [1]."
ARTICLE = "000_5016804d4a167ba4"  # the seed quoting Mao Ning on dual-use exports


@pytest.fixture
def settings(data_copy: Path, tmp_path: Path) -> Settings:
    build_fake(data_copy, tmp_path / "index")
    return Settings(
        data_dir=data_copy,
        index_dir=tmp_path / "index",
        state_dir=tmp_path / "state",
        embedding_model=FAKE_SPEC.model,
        chunk_tokens=FAKE_SPEC.chunk_tokens,
        chunk_overlap=FAKE_SPEC.chunk_overlap,
        answer_mode="generate",
        translate_queries=False,
        refuse_below=0.0,
        answer_confidence=0.0,
        closest_confidence=0.0,
    )


def _app(settings: Settings, reply: str = REPLY):  # type: ignore[no-untyped-def]
    return create_app(settings, Archive(settings, FakeEmbedder(), FakeChat(reply)))


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    with serve_app(_app(settings)) as url:
        yield url


QUESTION = "ماذا قالت ماو عن تصدير البنود ذات الاستخدام المزدوج؟"


def test_search_ask_article_index(api: str) -> None:
    found = httpx.post(f"{api}/v1/search", json={"question": QUESTION, "k": 2}).json()
    assert len(found["hits"]) == 2 and found["hits"][0]["rank"] == 1 and found["filter"] is None
    answer = httpx.post(f"{api}/v1/ask", json={"question": QUESTION}).json()
    assert answer["answer"] == REPLY and answer["mode"] == "generate"
    assert answer["citations"][0]["n"] == 1 and answer["citations"][0]["article_id"]
    assert "chat" not in answer  # not saved unless asked
    article = httpx.get(f"{api}/v1/articles/{ARTICLE}").json()
    assert article["id"] == ARTICLE and "الاستخدام المزدوج" in article["text"] and article["outlet"] == "SeaPRwire"
    index = httpx.get(f"{api}/v1/index").json()
    assert index["articles"] == 5 and index["version"]
    missing = httpx.get(f"{api}/v1/articles/nope")
    assert missing.status_code == 404 and "No article 'nope'" in missing.json()["error"]["message"]


def test_ask_streams_server_sent_events_and_filters_apply(api: str) -> None:
    body = {"question": QUESTION, "stream": True, "filter": {"outlets": ["seaprwire"]}}
    with httpx.stream("POST", f"{api}/v1/ask", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    kinds = [k for k, _ in events]
    assert kinds[0] == "step" and "text" in kinds and kinds[-1] == "answer"
    assert "".join(d["text"] for k, d in events if k == "text") == REPLY
    final = events[-1][1]
    assert final["filter"]["outlets"] == ["seaprwire"]
    assert {c["outlet"] for c in final["citations"]} == {"SeaPRwire"}


def test_chats_are_saved_continued_exported_renamed_deleted(api: str) -> None:
    first = httpx.post(f"{api}/v1/ask", json={"question": QUESTION, "save": True}).json()
    chat = first["chat"]["id"]
    assert first["chat"]["turn"] == 1
    second = httpx.post(f"{api}/v1/ask", json={"question": "وماذا عن الأسلحة؟", "chat": chat}).json()
    assert second["chat"] == {"id": chat, "turn": 2}
    listed = httpx.get(f"{api}/v1/chats").json()["chats"]
    assert [(c["id"], c["turns"], c["title"]) for c in listed] == [(chat, 2, QUESTION)]
    whole = httpx.get(f"{api}/v1/chats/{chat}").json()
    assert [t["question"] for t in whole["turns"]] == [QUESTION, "وماذا عن الأسلحة؟"]
    assert whole["turns"][0]["sources"][0]["status"] == "" and whole["turns"][0]["index_version"]
    markdown = httpx.get(f"{api}/v1/chats/{chat}/export")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert f'filename="chat-{chat}.md"' in markdown.headers["content-disposition"]
    assert f"## 1. {QUESTION}" in markdown.text and REPLY in markdown.text and "· SeaPRwire" in markdown.text
    exported = httpx.get(f"{api}/v1/chats/{chat}/export", params={"format": "json"}).json()
    assert exported["turns"][0]["answer"]["answer"] == REPLY
    renamed = httpx.patch(f"{api}/v1/chats/{chat}", json={"title": "  Dual-use  "}).json()
    assert renamed["title"] == "Dual-use"
    assert httpx.delete(f"{api}/v1/chats/{chat}").status_code == 204
    gone = httpx.get(f"{api}/v1/chats/{chat}")
    assert gone.status_code == 404 and "No chat" in gone.json()["error"]["message"]
    assert httpx.post(f"{api}/v1/ask", json={"question": QUESTION, "chat": chat}).status_code == 404


def test_openai_client_streamed_and_not_with_citations(api: str) -> None:
    client = OpenAI(base_url=f"{api}/v1", api_key="ignored-on-loopback-without-keys")
    assert [m.id for m in client.models.list()] == ["rag-news"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    done = client.chat.completions.create(model="rag-news", messages=messages)  # type: ignore[arg-type]
    text = done.choices[0].message.content or ""
    assert text.startswith(REPLY) and "\n\nSources:\n[1] " in text
    assert done.citations[0]["n"] == 1 and done.citations[0]["outlet"]  # type: ignore[attr-defined]
    chunks = list(client.chat.completions.create(model="rag-news", messages=messages, stream=True))  # type: ignore[arg-type]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].citations == done.citations  # type: ignore[attr-defined]


def test_bad_input_gets_a_4xx_that_says_what_to_fix(api: str, settings: Settings) -> None:
    def error(r: httpx.Response, status: int) -> str:
        assert r.status_code == status, r.text
        return str(r.json()["error"]["message"])

    raw = httpx.post(f"{api}/v1/ask", content=b'{"question": "x"', headers={"content-type": "application/json"})
    assert "not valid JSON" in error(raw, 400)
    assert "Unknown field 'qestion'" in error(httpx.post(f"{api}/v1/ask", json={"qestion": "x", "question": "y"}), 422)
    assert "The question is empty" in error(httpx.post(f"{api}/v1/ask", json={"question": "   "}), 422)
    big = "ا" * 100_000
    assert f"longer than {QUESTION_MAX}" in error(httpx.post(f"{api}/v1/ask", json={"question": big}), 422)
    huge = [{"role": "user", "content": big}]
    assert f"longer than {QUESTION_MAX}" in error(
        httpx.post(f"{api}/v1/chat/completions", json={"model": "m", "messages": huge}), 400
    )
    outlet = httpx.post(f"{api}/v1/search", json={"question": "x", "filter": {"outlets": ["Nowhere News"]}})
    assert "No outlet 'Nowhere News'" in error(outlet, 400)
    since = httpx.post(f"{api}/v1/ask", json={"question": "x", "filter": {"since": "yesterday"}})
    assert "yesterday" in error(since, 400)
    assert "Field 'messages' is missing" in error(httpx.post(f"{api}/v1/chat/completions", json={}), 422)
    assistant_last = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert "last message must be the user's" in error(
        httpx.post(f"{api}/v1/chat/completions", json={"messages": assistant_last}), 400
    )
    assert "k" in error(httpx.post(f"{api}/v1/ask", json={"question": "x", "k": 0}), 422)
    # nothing stored was lost: a saved chat is still whole
    saved = httpx.post(f"{api}/v1/ask", json={"question": QUESTION, "save": True}).json()["chat"]["id"]
    httpx.post(f"{api}/v1/ask", json={"question": "", "chat": saved})
    assert httpx.get(f"{api}/v1/chats/{saved}").json()["chat"]["turns"] == 1


def test_keys_on_loopback_once_one_exists_and_wrong_keys(settings: Settings) -> None:
    keys = KeyStore(StateDB(settings.state_dir))
    with serve_app(_app(settings)) as api:
        assert httpx.get(f"{api}/v1/index").status_code == 200  # loopback, no key made: the local user
        key = keys.add("desk-bot")
        refused = httpx.get(f"{api}/v1/index")
        assert refused.status_code == 401 and "rag keys add" in refused.json()["error"]["message"]
        wrong = httpx.get(f"{api}/v1/index", headers={"Authorization": "Bearer rag_wrong"})
        assert wrong.status_code == 401 and "rag_wrong" not in wrong.text
        ok = httpx.get(f"{api}/v1/index", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and key not in ok.text
        # each key sees its own chats only
        other = keys.add("cms")
        mine = httpx.post(f"{api}/v1/chats", json={"title": "mine"}, headers={"Authorization": f"Bearer {key}"})
        theirs = httpx.get(f"{api}/v1/chats", headers={"Authorization": f"Bearer {other}"}).json()
        assert mine.status_code == 201 and theirs == {"chats": []}
        keys.revoke("desk-bot")
        assert httpx.get(f"{api}/v1/index", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    with sqlite3.connect(settings.state_dir / "state.db") as db:
        stored = " ".join(str(v) for row in db.execute("SELECT * FROM api_keys") for v in row)
    assert key not in stored and other not in stored  # kept hashed


def test_keys_required_off_loopback(settings: Settings) -> None:
    """Configured to listen on 0.0.0.0 (served here on loopback): a key is needed even before one exists."""
    exposed = settings.model_copy(update={"api_host": "0.0.0.0"})
    with serve_app(_app(exposed)) as api:
        refused = httpx.get(f"{api}/v1/index")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        key = KeyStore(StateDB(settings.state_dir)).add("newsroom")
        assert httpx.get(f"{api}/v1/index", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert httpx.get(f"{api}/v1/index", headers={"X-API-Key": key}).status_code == 200


def test_per_key_limits(settings: Settings) -> None:
    strict = settings.model_copy(update={"api_per_minute": 3})
    with serve_app(_app(strict)) as api:
        codes = [httpx.get(f"{api}/v1/index").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        over = httpx.get(f"{api}/v1/index")
        assert "RAG_API_PER_MINUTE" in over.json()["error"]["message"] and int(over.headers["retry-after"]) >= 1


def test_state_database_survives_two_writers(tmp_path: Path) -> None:
    """Two processes appending to the same chats at once: every turn is there, numbered, and the file is sound."""
    import multiprocessing

    from rag.state.chats import ChatStore

    store = ChatStore(StateDB(tmp_path))
    chat = store.create("", "shared").id
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_turns, args=(str(tmp_path), chat, w, 60)) for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    turns = store.turns(chat, "")
    assert [t.n for t in turns] == list(range(1, 121))
    assert sorted(t.question for t in turns) == sorted(f"q{w}-{i}" for w in range(2) for i in range(60))
    assert len(store.chats("")) == 1 + 2 * 60 // 10
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _write_turns(folder: str, chat: str, worker: int, count: int) -> None:
    from rag.state.chats import ChatStore

    store = ChatStore(StateDB(Path(folder)))
    for i in range(count):
        store.add_turn(chat, "", f"q{worker}-{i}", {"answer": json.dumps(i), "outcome": "answer"}, ())
        if i % 10 == 9:
            store.create("", f"w{worker}-{i}")
