"""The answer endpoint failing: bounded retries with backoff, clear messages, sources still shown, key never shown."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from rag.config import get_settings
from rag.errors import LLMError, LLMTimeoutError
from rag.llm.client import OpenAIChat
from rag.retrieve.translate import QueryTranslator

from .conftest import FakeChat
from .helpers import rag
from .stub_llm import ANSWER, StubLLM

KEY = "sk-test-SECRET-7f3a9c"
MESSAGES = [{"role": "user", "content": "What did Mao Ning say?"}]
FAST = "0.05"  # Retry-After seconds the stub sends, so that retried tests stay quick


def _chat(url: str, retries: int = 2, timeout: float = 10.0) -> OpenAIChat:
    return OpenAIChat("stub", url, KEY, timeout=timeout, max_tokens=50, retries=retries)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_busy_or_failing_server_is_retried_then_answers(status: int) -> None:
    with StubLLM(f"status:{status}", failures=2, retry_after=FAST) as stub:
        assert "".join(_chat(stub.url).stream(MESSAGES)) == "".join(ANSWER)
    assert stub.requests == 3
    assert all(a == f"Bearer {KEY}" for a in stub.auth)  # the key is sent, only in the header


@pytest.mark.parametrize("status", [429, 500])
def test_retries_are_bounded_and_the_message_is_clear(status: int) -> None:
    with StubLLM(f"status:{status}", retry_after=FAST) as stub, pytest.raises(LLMError) as err:
        "".join(_chat(stub.url, retries=2).stream(MESSAGES))
    assert stub.requests == 3
    assert f"HTTP {status}" in str(err.value) and "3 attempts" in str(err.value)
    assert KEY not in str(err.value)


def test_the_servers_retry_after_is_honoured() -> None:
    """A 429 with `Retry-After: 1` is retried after that second, not after the client's own 0.5 s backoff."""
    with StubLLM("status:429", failures=1, retry_after="1") as stub:
        assert "".join(_chat(stub.url).stream(MESSAGES)) == "".join(ANSWER)
    assert stub.requests == 2 and stub.times[1] - stub.times[0] >= 0.95


def test_client_error_is_not_retried_and_an_echoed_key_is_masked() -> None:
    with StubLLM("status:400") as stub, pytest.raises(LLMError) as err:
        "".join(_chat(stub.url).stream(MESSAGES))
    assert stub.requests == 1
    assert "HTTP 400" in str(err.value) and "RAG_LLM_MODEL" in str(err.value)
    assert KEY not in str(err.value) and "***" in str(err.value)  # the stub echoed the Authorization header


def test_stalled_server_times_out_after_bounded_retries() -> None:
    with StubLLM("stall", stall=3.0) as stub, pytest.raises(LLMTimeoutError) as err:
        "".join(_chat(stub.url, retries=1, timeout=0.5).stream(MESSAGES))
    assert stub.requests == 2
    assert "timed out" in str(err.value) and "RAG_LLM_TIMEOUT" in str(err.value)


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(LLMError) as err:
        "".join(_chat(f"http://127.0.0.1:{port}/v1", retries=2).stream(MESSAGES))
    assert "cannot be reached" in str(err.value) and "3 attempts" in str(err.value)


@pytest.mark.parametrize("mode", ["cut", "truncate"])
def test_stream_cut_mid_answer_is_reported_not_repeated(mode: str) -> None:
    shown: list[str] = []
    with StubLLM(mode) as stub, pytest.raises(LLMError) as err:
        for piece in _chat(stub.url).stream(MESSAGES):
            shown.append(piece)
    assert shown == ANSWER[:2]  # what was shown stays shown
    assert stub.requests == 1  # retrying would repeat the start of the answer
    assert "cut off" in str(err.value)


def test_settings_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    s = get_settings()
    assert s.api_key == KEY and not s.uses_embedded_llm
    assert KEY not in repr(s) and KEY not in str(s.model_dump())


def test_translation_pauses_after_a_failure(tmp_path: Path) -> None:
    calls = []

    class Down(FakeChat):
        def stream(self, messages, on_wait=None):  # type: ignore[no-untyped-def]
            calls.append(1)
            raise LLMError("The answer model at http://127.0.0.1:9/v1 cannot be reached (1 attempts): check it.")
            yield ""  # pragma: no cover

    translator = QueryTranslator(lambda: Down("x"), "m", tmp_path / "cache.jsonl", pause_after_failure=60)
    first = translator.render("What did Mao Ning say?")
    second = translator.render("What did Medvedev warn about?")
    assert first.arabic is None and second.arabic is None
    assert len(calls) == 1  # the second search did not wait for a model that just failed
    assert first.skipped == "the answer model could not be reached"
    assert second.skipped == "the answer model failed moments ago"


def test_translation_says_when_the_model_timed_out(tmp_path: Path) -> None:
    class Slow(FakeChat):
        def stream(self, messages, on_wait=None):  # type: ignore[no-untyped-def]
            raise LLMTimeoutError("The answer model at http://127.0.0.1:9/v1 timed out (2 attempts): try again.")
            yield ""  # pragma: no cover

    translator = QueryTranslator(lambda: Slow("x"), "m", tmp_path / "cache.jsonl", pause_after_failure=60)
    rendered = translator.render("What did Mao Ning say?")
    assert rendered.arabic is None and rendered.skipped == "the answer model did not answer in time"


def test_cli_shows_sources_and_a_clear_error_and_never_the_key(real_index: Path) -> None:
    with StubLLM("status:500") as stub:
        env = {"OPENAI_BASE_URL": stub.url, "RAG_LLM_MODEL": "stub", "OPENAI_API_KEY": KEY, "RAG_LLM_RETRIES": "1"}
        question = "What did Mao Ning say about dual-use exports?"
        done = rag("ask", question, "--index", str(real_index), env=env, process=True)
        as_json = rag("ask", "ماذا قالت ماو نينغ؟", "--json", "--index", str(real_index), env=env, process=True)
    assert done.returncode == 1
    assert "HTTP 500" in done.stderr and "2 attempts" in done.stderr
    # the view's heading for a failed answer, the same words as the page's
    assert "Retrieved passages (the answer model did not answer)" in done.stdout
    assert "000_5016804d4a167ba4" in done.stdout
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["passages"]
    for out in (done.stdout, done.stderr, as_json.stdout, as_json.stderr):  # stderr holds the retry warnings
        assert KEY not in out
    assert stub.requests >= 4  # both questions tried twice (the translation once more, without retries)


def test_the_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Every log record of a failing exchange, down to the HTTP client's debug lines, is free of the key."""
    caplog.set_level(logging.DEBUG)
    with StubLLM("status:500") as stub, pytest.raises(LLMError):
        "".join(_chat(stub.url, retries=1).stream(MESSAGES))
    assert "retrying request" in caplog.text.lower() and "500" in caplog.text  # the client's records were captured
    assert KEY not in caplog.text
