"""The real embedded answer server killed with SIGSEGV while it serves: the next question gets the crash message
(CLI, `--json`, the page's sidebar and the message beside the answer), the server is restarted once, and the
answer after the restart works; a second crash soon after stops the restarts and keeps saying why, until
`rag llm start`. Each test has its own server (port and cache folder): the shared one is never killed."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from rag.config import Settings, get_settings
from rag.llm.local_server import ensure_local_server, server_status, stop_local_server

from .conftest import DATA
from .helpers import rag
from .test_app import APP, TIMEOUT

CRASH_PORT = int(os.environ.get("RAG_TEST_CRASH_PORT", "8802"))
QUESTION = "Mao Ning on dual-use exports"  # searched with its rendering: the model is asked for one
SAID = "What did Mao Ning say about dual-use exports?"  # answered from her statements: no rendering needed
DUAL_USE = "ذات الاستخدام المزدوج"
SEGV = "crashed (signal 11, SIGSEGV)"
SEGV_SHOWN = "signal 11, SIGSEGV"  # as the page shows it: Markdown escapes the brackets


@pytest.fixture
def crashable(real_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    """A real embedded server of this test's own, ready (it answered one token), and the env that reaches it."""
    cache = tmp_path_factory.mktemp("rag-test-cache-crash")
    settings = get_settings(index_dir=real_index, data_dir=DATA, llm_port=CRASH_PORT, cache_dir=cache)
    ensure_local_server(settings)
    env = {"RAG_INDEX_DIR": str(real_index), "RAG_LLM_PORT": str(CRASH_PORT), "RAG_CACHE_DIR": str(cache)}
    yield settings, env
    stop_local_server(settings)


def _segfault(settings: Settings) -> int:
    """Kill the serving llama.cpp process with SIGSEGV, as a bad instruction would; wait until its end is known."""
    run_file = settings.cache / f"llm-server-{settings.llm_port}.run.json"
    server = json.loads(run_file.read_text())["server"]
    os.kill(server, signal.SIGSEGV)
    deadline = time.monotonic() + 30
    while "returncode" not in json.loads(run_file.read_text()):
        assert time.monotonic() < deadline, "the runner did not write down the server's end"
        time.sleep(0.1)
    return int(server)


def _server_pid(settings: Settings) -> int:
    return int(json.loads((settings.cache / f"llm-server-{settings.llm_port}.run.json").read_text())["server"])


def test_cli_reports_the_crash_restarts_once_and_answers_after(crashable: tuple[Settings, dict[str, str]]) -> None:
    settings, env = crashable
    killed = _segfault(settings)
    assert server_status(settings)[0] == "error" and SEGV in server_status(settings)[1]

    crashed = rag("ask", QUESTION, "--json", env=env, process=True)
    assert crashed.returncode == 0, crashed.stderr
    report = json.loads(crashed.stdout)["translation_skipped"]
    assert SEGV in report and "It was restarted: ask again." in report
    assert "last lines of" in report and "docs/answer-model.md" in report
    assert SEGV in crashed.stderr  # the text output says it too
    assert DUAL_USE in json.loads(crashed.stdout)["answer"]  # the quote answer is still given, from the Arabic words

    assert _server_pid(settings) != killed
    level, status = server_status(settings)
    assert level == "warning" and status.startswith("running again") and SEGV in status

    after = rag("ask", SAID, "--json", env={**env, "RAG_ANSWER_MODE": "generate"}, process=True)
    assert after.returncode == 0, after.stderr
    answer = json.loads(after.stdout)
    assert answer["translation_skipped"] is None and answer["model"] and answer["answer"].strip()
    assert answer["citations"] and not answer["refused"]

    _segfault(settings)  # a second crash within minutes of the restart: no more restarts, and it keeps saying why
    for _ in range(2):
        again = rag("ask", "Lavrov on NATO", "--json", env=env, process=True)
        assert again.returncode == 0, again.stderr
        assert (
            "Not restarted (crashed again within 10 minutes of its restart)"
            in json.loads(again.stdout)["translation_skipped"]
        )
    doctor = rag("doctor", "--json", env=env, process=True)
    assert doctor.returncode == 1
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["endpoint"]["ok"] is False and SEGV in checks["endpoint"]["detail"]
    precision = checks["embedding precision"]["detail"]  # what the encoder uses here, and the index's vectors
    assert precision.startswith(("passages in fp32 (", "passages in bf16 (")) and "the index's vectors:" in precision

    started = rag("llm", "start", env=env, process=True)  # the user's way to try again
    assert started.returncode == 0 and "answered a one-token completion" in started.stdout, started.stderr
    assert server_status(settings)[0] == "ok"


def _page(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> AppTest:
    for name, value in {**env, "RAG_ANSWER_MODE": "quote"}.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def _sidebar_alerts(page: AppTest) -> list[str]:
    return [e.value for e in page.sidebar.error] + [w.value for w in page.sidebar.warning]


def test_page_says_the_model_crashed_beside_the_answer_and_in_the_sidebar(
    crashable: tuple[Settings, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, env = crashable
    _segfault(settings)
    page = _page(monkeypatch, env)
    assert any(SEGV_SHOWN in alert for alert in _sidebar_alerts(page))  # seen before anyone asks

    page.chat_input[0].set_value(QUESTION).run()
    assert not page.exception
    record = page.session_state.messages[-1]
    assert SEGV in record["warning"] and "It was restarted" in record["warning"]
    assert any(SEGV_SHOWN in w.value for w in page.main.warning)  # shown beside the answer
    assert DUAL_USE in record["content"]  # the quote answer is still there
    assert any("running again" in alert for alert in _sidebar_alerts(page))

    page.chat_input[0].set_value("Where did Patrushev and Yang Jiechi meet?").run()
    assert not page.exception
    ok = page.session_state.messages[-1]
    assert not ok.get("warning") and "searched without" not in ok["meta"], ok["meta"]
