"""Shared fixtures: fast fakes for unit tests, the real model, index and answer server for integration tests."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
QUESTIONS = Path(__file__).resolve().parent / "seed_questions.jsonl"
TEST_LLM_PORT = int(os.environ.get("RAG_TEST_LLM_PORT", "8799"))  # the tests' own answer server, not a user's 8765

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # model hubs are unreachable here; never wait on them
# Never read or write the user's cache (query translations, answer-server state): a private one per test run.
# The model files in RAG_MODELS_DIR are only read. Subprocesses (the CLI, the page) inherit it.
# A test's subprocess that imports this module (test_crash.py) keeps its parent's folder: it may be killed
# before it could remove one of its own.
if not Path(os.environ.get("RAG_CACHE_DIR", "/")).name.startswith("rag-test-cache-"):
    os.environ["RAG_CACHE_DIR"] = tempfile.mkdtemp(prefix="rag-test-cache-")
    atexit.register(shutil.rmtree, os.environ["RAG_CACHE_DIR"], ignore_errors=True)  # and leave no trace of it
# The chats and API keys (RAG_STATE_DIR) of a test run: a private folder, never the checkout's state/.
if not Path(os.environ.get("RAG_STATE_DIR", "/")).name.startswith("rag-test-state-"):
    os.environ["RAG_STATE_DIR"] = tempfile.mkdtemp(prefix="rag-test-state-")
    atexit.register(shutil.rmtree, os.environ["RAG_STATE_DIR"], ignore_errors=True)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder: same words, same vector."""

    name = "fake-embedder"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for word in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class FakeChat:
    """An answer model that replies with a fixed text, in small pieces."""

    endpoint = "fake://"

    def __init__(self, reply: str, name: str = "fake-llm") -> None:
        self.reply = reply
        self.name = name
        self.messages: list[dict[str, str]] = []

    def stream(self, messages: list[dict[str, str]], on_wait: object = None) -> Iterator[str]:
        self.messages = messages
        for i in range(0, len(self.reply), 7):
            yield self.reply[i : i + 7]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the seed articles."""
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst)
    return dst


@pytest.fixture(scope="session")
def seed_questions() -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------ real parts


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings, but a private index folder and the tests' own answer-server port."""
    return get_settings(index_dir=tmp_path_factory.mktemp("index"), data_dir=DATA, llm_port=TEST_LLM_PORT)


@pytest.fixture(scope="session")
def real_embedder(real_settings: Settings):  # type: ignore[no-untyped-def]
    """The real multilingual-e5-small; fails (never skips) when `rag models install` was not run."""
    from rag.embed.embedder import embedder_for

    return embedder_for(real_settings)


@pytest.fixture(scope="session")
def real_index(real_settings: Settings, real_embedder):  # type: ignore[no-untyped-def]
    """A real FAISS index of the seed articles, built on disk once per test session."""
    from rag.index.build import build_index

    build_index(
        real_settings.data_dir,
        real_settings.index_dir,
        real_embedder,
        real_settings.index_spec,
    )
    return real_settings.index_dir


@pytest.fixture(scope="session")
def news_index(real_settings: Settings, real_embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A real FAISS index of the news fixtures (dates across 2022-2024, three outlets, a story told twice)."""
    from rag.index.build import build_index

    folder = tmp_path_factory.mktemp("news-index")
    build_index(Path(__file__).parent / "fixtures" / "news", folder, real_embedder, real_settings.index_spec)
    return folder


def index_of(folders: Sequence[Path], name: str, settings: Settings, embedder, factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A real index, built on disk, of every article file of the folders (copied into one data folder; a page
    fixture's gold.json is not an article)."""
    from rag.index.build import build_index

    data = factory.mktemp(f"{name}-data")
    for folder in folders:
        for f in folder.iterdir():
            if f.suffix in (".txt", ".md", ".html", ".htm", ".jsonl", ".json") and f.name != "gold.json":
                shutil.copy(f, data / f.name)
    index = factory.mktemp(f"{name}-index")
    build_index(data, index, embedder, settings.index_spec)
    return index


# Using one of these makes a test an integration test (`make test-fast` runs the others: `-m "not integration"`).
REAL_PARTS = {"real_embedder", "real_index", "llm_server", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the real model, index, answer server or browser as `integration`."""
    for item in items:
        if REAL_PARTS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


SHARED = ROOT.parent / "shared"  # the evaluation data beside the checkout: integration tests only


@pytest.fixture(autouse=True)
def unit_tests_stay_unit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test (not `integration`) that reads ../shared or starts the command line as a process fails, saying
    so: `make test-fast` promises neither (docs/tests.md)."""
    if request.node.get_closest_marker("integration"):
        return
    import builtins
    import io

    opened = builtins.open

    def guarded(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(file, (str, Path)) and Path(file).resolve().is_relative_to(SHARED.resolve()):
            raise AssertionError(f"a unit test read {file}: use a fixture it writes, or mark it integration")
        return opened(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)
    monkeypatch.setenv("RAG_TEST_UNIT", request.node.nodeid)


@pytest.fixture(scope="session", autouse=True)
def stop_test_llm_server(real_settings: Settings) -> Iterator[None]:
    """Whatever started the tests' answer server (a fixture, a `rag` subprocess translating a question), stop it."""
    yield
    from rag.llm.local_server import stop_local_server

    stop_local_server(real_settings)


@pytest.fixture(scope="session")
def llm_server(real_settings: Settings) -> Iterator[str]:
    """The real embedded answer server on 127.0.0.1, stopped after the session."""
    from rag.llm.local_server import ensure_local_server, stop_local_server

    url = ensure_local_server(real_settings)
    yield url
    stop_local_server(real_settings)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """Debian's chromium; the test fails (never skips) when it is missing: CI installs it."""
    from .pagetools import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    assert Path(CHROMIUM).exists(), "chromium is missing: apt-get install -y chromium (make test does it as root)"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
