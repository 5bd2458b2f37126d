"""`rag serve` as a user runs it: the real command, index, embedding model and answer model, on loopback; the
official openai client streams a cited answer; keys from `rag keys`, and no key in the log or a response."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from .apitools import serve_command, sse_events
from .conftest import TEST_LLM_PORT
from .helpers import rag
from .pagetools import free_port

QUESTION = "What did Mao Ning say about dual-use exports?"
QUOTE = "سيطرنا دائما على تصدير البنود"


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    return {"RAG_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def served(real_index: Path, llm_server: str, state: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`rag serve` on 127.0.0.1 and a free port, its log in a file."""
    log = tmp_path / "serve.log"
    env = {**os.environ, "RAG_INDEX_DIR": str(real_index), "RAG_LLM_PORT": str(TEST_LLM_PORT), **state}
    with serve_command(env, log, timeout=120) as url:
        yield url, log


def test_openai_client_streams_a_cited_answer_and_keys_stay_secret(
    served: tuple[str, Path], state: dict[str, str]
) -> None:
    url, log = served
    made = rag("keys", "add", "open-webui", env=state)
    assert made.returncode == 0, made.stderr
    key = made.stdout.split()[-1]  # the last word of the output
    assert re.fullmatch(r"rag_[A-Za-z0-9_-]{40,}", key)
    listed = rag("keys", "list", env=state).stdout
    assert "open-webui" in listed and "active" in listed and key not in listed

    client = OpenAI(base_url=f"{url}/v1", api_key=key)
    stream = client.chat.completions.create(
        model="rag-news", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert QUOTE in text and "[1]" in text and "Sources:\n[1] " in text and "SeaPRwire" in text
    citations = chunks[-1].citations  # type: ignore[attr-defined]
    assert citations and citations[0]["n"] == 1 and citations[0]["outlet"] == "SeaPRwire"
    assert QUOTE in citations[0]["text"] and citations[0]["url"] is None or citations[0]["url"].startswith("http")

    # /v1/ask streamed as server-sent events, saved to a chat the key owns
    body = {"question": QUESTION, "stream": True, "save": True}
    with httpx.stream("POST", f"{url}/v1/ask", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=300) as r:
        events = sse_events(r.iter_lines())
    answer = events[-1][1]
    assert events[-1][0] == "answer" and answer["outcome"] == "answer" and QUOTE in answer["answer"]
    chat = answer["chat"]["id"]
    chats = httpx.get(f"{url}/v1/chats", headers={"Authorization": f"Bearer {key}"}).json()["chats"]
    assert [c["id"] for c in chats] == [chat]

    assert httpx.get(f"{url}/v1/index").status_code == 401  # a key exists: none sent is refused
    assert httpx.get(f"{url}/v1/index", headers={"Authorization": "Bearer rag_not-a-key"}).status_code == 401
    assert rag("keys", "revoke", "open-webui", env=state).returncode == 0
    assert httpx.get(f"{url}/v1/index", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    time.sleep(0.5)
    logged = log.read_text()
    assert "POST /v1/chat/completions" in logged  # the access log is on ...
    assert key not in logged and "rag_not-a-key" not in logged  # ... and holds no key


def test_serve_refuses_to_listen_off_loopback_without_a_key(real_index: Path, state: dict[str, str]) -> None:
    done = rag(
        "serve", "--host", "0.0.0.0", "--port", str(free_port()), env={"RAG_INDEX_DIR": str(real_index), **state}
    )
    assert done.returncode == 1
    assert "make a key first (`rag keys add NAME`)" in done.stderr


def test_keys_commands_say_what_is_wrong(state: dict[str, str]) -> None:
    bad = rag("keys", "add", "no spaces", env=state)
    assert bad.returncode == 1 and "Invalid key name 'no spaces'" in bad.stderr
    assert rag("keys", "add", "bot", env=state).returncode == 0
    twice = rag("keys", "add", "bot", env=state)
    assert twice.returncode == 1 and "rag keys revoke bot" in twice.stderr
    unknown = rag("keys", "revoke", "nobody", env=state)
    assert unknown.returncode == 1 and "No active key named 'nobody'" in unknown.stderr
