"""A living index: searches during updates see one complete version; the page picks up a new version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from rag.index.build import build_index, update_index
from rag.llm import client
from rag.types import IndexSpec

from .conftest import DATA, ROOT, FakeChat, FakeEmbedder
from .stub_llm import StubLLM

SPEC = IndexSpec(FakeEmbedder.name, chunk_tokens=40, chunk_overlap=0)

# Searches in a loop from another process, reloading the index whenever its version changes.
SEARCHER = """
import json, sys, time
from pathlib import Path
from rag.config import get_settings
from rag.retrieve.retriever import retriever_for
from rag.index.store import load_index
from rag.index.versions import live_version
from rag.types import IndexSpec
from tests.conftest import FakeEmbedder

index_dir, stop = Path(sys.argv[1]), Path(sys.argv[2])
settings = get_settings(lexical_weight=0.0, translate_queries=False, chunk_tokens=40, chunk_overlap=0)
version, retriever, seen = None, None, []
print("ready", flush=True)
while not stop.exists() and len(seen) < 200_000:
    if live_version(index_dir) != version:
        version = live_version(index_dir)
        retriever = retriever_for(load_index(index_dir, IndexSpec(FakeEmbedder.name, 40, 0)), FakeEmbedder(), settings)
    hits = retriever.search("الخبر الجديد عن الاجتماع", 6)
    seen.append(sorted({h.chunk.article_id.split("-")[0] for h in hits}))
print(json.dumps(seen))
"""


def _generation(folder: Path, tag: str) -> None:
    """Replace the folder's articles with six of generation `tag` (ids "<tag>-<n>")."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for n in range(6):
        (folder / f"{tag}-{n}.txt").write_text(
            f"الخبر الجديد رقم {n} من الجيل {tag} عن الاجتماع. وجملة ثانية عن الاجتماع {n}.", encoding="utf-8"
        )


def test_searches_during_updates_see_one_complete_version(tmp_path: Path) -> None:
    data, index = tmp_path / "data", tmp_path / "index"
    _generation(data, "g0")
    build_index(data, index, FakeEmbedder(), SPEC)
    stop = tmp_path / "stop"
    searcher = subprocess.Popen(
        [sys.executable, "-c", SEARCHER, str(index), str(stop)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert searcher.stdout is not None and searcher.stdout.readline().strip() == "ready"
    for tag in ("g1", "g2", "g3", "g4", "g5"):
        _generation(data, tag)
        update_index(data, index, FakeEmbedder(), SPEC)
        time.sleep(0.2)
    stop.touch()
    out, _ = searcher.communicate(timeout=300)
    assert searcher.returncode == 0  # every search succeeded
    seen = json.loads(out)
    assert len(seen) > 100 and all(len(generations) == 1 for generations in seen)  # never a mix
    assert len({g[0] for g in seen}) >= 2  # the searcher did see the index change under it


@pytest.fixture
def own_index(tmp_path: Path, real_embedder, real_settings):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    index = tmp_path / "index"
    build_index(data, index, real_embedder, real_settings.index_spec)
    return data, index


def test_running_page_picks_up_a_new_version(own_index, real_embedder, real_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data, index = own_index
    monkeypatch.setenv("RAG_INDEX_DIR", str(index))
    monkeypatch.setenv("RAG_TRANSLATE_QUERIES", "false")
    monkeypatch.setattr(client, "make_chat_model", lambda settings: FakeChat("An answer [1]."))
    st.cache_resource.clear()
    page = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    page.run()
    question = "ما هي نتيجة مباراة كرة القدم بين الأهلي والزمالك؟"
    page.chat_input[0].set_value(question).run()
    before = page.session_state.messages[1]  # the seeds do not say: refused, or the closest passages
    assert before["outcome"] != "answer" and all(c["article_id"] != "900_football" for c in before.get("sources", []))
    (data / "900_football.txt").write_text(
        "فاز الأهلي على الزمالك بثلاثة أهداف مقابل هدف في مباراة كرة القدم مساء الجمعة في القاهرة. "
        "وسجل المهاجم هدفين في الشوط الثاني.",
        encoding="utf-8",
    )
    update_index(data, index, real_embedder, real_settings.index_spec)
    page.chat_input[0].set_value(question).run()  # same page, no restart
    assert not page.exception and not page.error
    after = page.session_state.messages[3]
    assert after["outcome"] == "answer" and after["sources"][0]["article_id"] == "900_football"
    assert any("**6** articles" in m.value for m in page.sidebar.markdown)


def test_chat_cli_picks_up_a_new_version(own_index, real_embedder, real_settings) -> None:  # type: ignore[no-untyped-def]
    data, index = own_index
    question = "ما هي نتيجة مباراة كرة القدم بين الأهلي والزمالك؟"
    with StubLLM("ok") as stub:
        env = {**os.environ, "OPENAI_BASE_URL": stub.url, "RAG_LLM_MODEL": "stub", "RAG_TRANSLATE_QUERIES": "false"}
        chat = subprocess.Popen(
            [sys.executable, "-m", "rag.cli.main", "chat", "--index", str(index)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**env, "HF_HUB_OFFLINE": "1"},
        )
        assert chat.stdin is not None and chat.stdout is not None
        chat.stdin.write(f"{question}\n/sources\n")
        chat.stdin.flush()
        while not chat.stdout.readline().startswith("searched as:"):
            pass
        first_hit = chat.stdout.readline()  # "[1] score article title"
        (data / "900_football.txt").write_text(
            "فاز الأهلي على الزمالك بثلاثة أهداف مقابل هدف في مباراة كرة القدم مساء الجمعة في القاهرة.",
            encoding="utf-8",
        )
        update_index(data, index, real_embedder, real_settings.index_spec)
        out, _ = chat.communicate(f"{question}\n/sources\n/quit\n", timeout=300)
    assert chat.returncode == 0
    assert "900_football" not in first_hit
    assert "(index updated: 6 articles)" in out  # same process, no restart
    after = out.split("searched as:")[-1].splitlines()
    assert "900_football" in after[1]  # the new article is now the best passage


def test_page_never_shows_the_api_key(real_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-PAGE-SECRET-42"
    with StubLLM("status:500") as stub:
        monkeypatch.setenv("RAG_INDEX_DIR", str(real_index))
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
        monkeypatch.setenv("RAG_LLM_MODEL", "stub")
        monkeypatch.setenv("RAG_LLM_RETRIES", "1")
        monkeypatch.setenv("RAG_TRANSLATE_QUERIES", "false")
        st.cache_resource.clear()
        page = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        page.run()
        page.chat_input[0].set_value("What did Mao Ning say about dual-use exports?").run()
    assert page.error and "HTTP 500" in page.error[0].value and "2 attempts" in page.error[0].value
    assert page.session_state.messages[1]["sources"]  # the passages found are still shown
    shown = [
        e.value for kind in ("markdown", "caption", "error", "warning", "code", "text") for e in getattr(page, kind)
    ]
    assert shown and not any(key in str(v) for v in shown)
    assert key not in repr(page.session_state.messages)


def test_an_old_retriever_is_released_after_a_switch(tmp_path: Path) -> None:
    """Nothing keeps the previous version's vectors and BM25 tables alive once the pipeline moved on."""
    import gc
    import weakref

    from rag.answer.pipeline import AnswerPipeline
    from rag.config import get_settings
    from rag.index.store import load_index
    from rag.retrieve.retriever import retriever_for

    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    index_dir = tmp_path / "index"
    embedder = FakeEmbedder()
    settings = get_settings(translate_queries=False, answer_mode="generate", chunk_tokens=40, chunk_overlap=0)
    build_index(data, index_dir, embedder, SPEC)
    old = retriever_for(load_index(index_dir, SPEC), embedder, settings)
    pipeline = AnswerPipeline(settings, old, FakeChat("The articles do not say."))
    assert pipeline.ask("Where did Patrushev and Yang Jiechi meet?").answer.refused  # fills every cache
    gone = weakref.ref(old)
    (data / "000_5016804d4a167ba4.txt").unlink()
    update_index(data, index_dir, embedder, SPEC)
    pipeline = pipeline.over(retriever_for(load_index(index_dir, SPEC), embedder, settings))
    assert pipeline.ask("What did Mao Ning say about dual-use exports?").answer.refused
    del old
    gc.collect()
    assert gone() is None, [type(r).__name__ for r in gc.get_referrers(gone())]
