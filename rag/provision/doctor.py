"""`rag doctor`: what is installed and whether each part works, each with OK or what to do."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import DEFAULT_EMBEDDING_MODEL, Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.embed.embedder import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "llama-cpp-python", "openai", "streamlit",
            "pymilvus", "bm25s")  # fmt: skip
PROBE_QUESTION = "What did Mao Ning say about dual-use exports?"


@dataclass(frozen=True)
class Check:
    """One line of the report: `ok` None = for information (never a failure)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


def _versions() -> Check:
    from rag.provision.lockfile import LLM_LOCK, LOCK, normalize, read_pins

    pins: dict[str, str] = {}
    for lock in (ROOT / LOCK, ROOT / LLM_LOCK):
        if lock.exists():
            pins |= {name: pin.version for name, pin in read_pins(lock).items()}
    seen, off = [], []
    for name in PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "missing"
        seen.append(f"{name} {version}")
        locked = pins.get(normalize(name))
        if locked is not None and locked != version:
            off.append(f"{name} {version} (locked {locked})")
    detail = f"Python {platform.python_version()}; " + ", ".join(seen)
    if off:
        return Check("versions", False, f"{detail}; not as locked: {', '.join(off)}", "run `make install`")
    return Check("versions", True, detail + (" (as locked)" if pins else ""))


def _cpu() -> Check:
    from rag.provision.runtime import BASELINE, CPU_FLAG, cpu_flags, cpu_model, os_grants_amx

    flags = cpu_flags()
    if not flags:
        return Check("cpu", None, f"{cpu_model()}: no /proc/cpuinfo to read its features from")
    have = [name for name, flag in CPU_FLAG.items() if flag in flags]
    lacking = [name for name in BASELINE if CPU_FLAG[name] not in flags]
    granted = "granted" if os_grants_amx() else "NOT granted"
    amx = f"; AMX reported, {granted} by the OS" if "amx_tile" in flags else ""
    detail = f"{cpu_model()}, {platform.machine()}: {' '.join(have)}{amx}"
    if lacking:
        return Check("cpu", False, f"{detail}; lacks {', '.join(lacking)}",
                     "the embedded answer model needs AVX2: set OPENAI_BASE_URL to another answer server")  # fmt: skip
    return Check("cpu", True, detail)


def _runtime(settings: Settings) -> Check:
    from rag.provision.runtime import (
        BUILD_ID,
        RuntimeProblem,
        above_baseline,
        check_cpu,
        chosen_runtime,
        installed_build,
    )

    try:
        chosen = chosen_runtime(settings.llm_runtime)
        info = check_cpu(lib=chosen[1] if chosen else None)
    except RuntimeProblem as exc:
        return Check("answer runtime", False, str(exc), "run `make install` (it builds the portable runtime)")
    record = installed_build()
    build = "portable build" if record.get("build") == BUILD_ID else "NOT the portable build of `make install`"
    used = f"{chosen[0].name} variant ({chosen[0].describe})" if chosen else "the portable build"
    try:
        foreign = above_baseline()
        wrong = {} if chosen is None else chosen[0].forbidden(chosen[1])
    except RuntimeProblem as exc:
        foreign, wrong, build = {}, {}, f"{build}; instructions not checked ({exc})"
    detail = f"llama.cpp {info.text.removeprefix('CPU : ').strip(' |')}; {build}; runs on {used}"
    if foreign:
        return Check("answer runtime", False, f"{detail}; holds instructions above AVX2: {foreign}",
                     "run `.venv/bin/python -m rag.provision.runtime --force`")  # fmt: skip
    if wrong:
        fix = "run `.venv/bin/python -m rag.provision.runtime --force`, or set RAG_LLM_RUNTIME=portable"
        return Check("answer runtime", False, f"{detail}; the variant holds instructions it must not: {wrong}", fix)
    return Check("answer runtime", True if record.get("build") == BUILD_ID else None, detail)


def _models(settings: Settings) -> Check:
    from rag.provision.paths import GGUF_SHA256, e5_dir, e5_installed, gguf_path, llm_installed

    if not e5_installed(settings.models_dir):
        return Check("models", False, f"no embedding model in {settings.models_dir}", "run `rag models install`")
    if not settings.uses_embedded_llm:
        return Check("models", True, f"embedding model {e5_dir(settings.models_dir)}; answer model at an endpoint")
    if not llm_installed(settings.models_dir):
        return Check("models", False, f"no answer model in {settings.models_dir}", "run `rag models install`")
    from rag.files import file_sha256

    path = gguf_path(settings.models_dir)
    if file_sha256(path) != GGUF_SHA256:
        return Check("models", False, f"{path} does not match its sha256", "delete it and run `rag models install`")
    return Check("models", True, f"embedding model {e5_dir(settings.models_dir)}; {path.name} (sha256 verified)")


def _index(settings: Settings) -> Check:
    from rag.index.build import index_is_current
    from rag.index.manifest import read_manifest

    try:
        m = read_manifest(settings.index_dir)
    except RagError as exc:
        return Check("index", False, str(exc), "run `rag index build`")
    detail = f"{settings.index_dir}: {len(m.articles)} articles, {m.chunks} chunks, {m.kind}, built {m.built_at}"
    if not index_is_current(settings.data_dir, settings.index_dir, settings.index_spec):
        return Check("index", False, f"{detail}; out of date with {settings.data_dir} or the settings",
                     "run `rag index update` (or `rag index build`)")  # fmt: skip
    return Check("index", True, detail)


def _precision(settings: Settings, embedder: Callable[[], SentenceTransformerEmbedder]) -> Check:
    from rag.index.manifest import read_manifest

    try:
        loaded = embedder()
    except RagError as exc:
        return Check("embedding precision", False, f"not checked: {exc}", "run `rag models install`")
    choice = loaded.choose_precision()
    try:
        built = f"; the index's vectors: {read_manifest(settings.index_dir).embed_precision}"
    except RagError:
        built = ""
    detail = f"passages in {choice.describe()}{built}"
    if loaded.onnx is not None:
        return Check("embedding precision", None, f"{detail}; questions through ONNX Runtime")
    if loaded.device != "cpu" or settings.embedding_model != DEFAULT_EMBEDDING_MODEL:
        where = f"on {loaded.device}" if loaded.device != "cpu" else "(a question graph is made for the default model)"
        return Check("embedding precision", None, f"{detail}; questions through torch {where}")
    return Check("embedding precision", False, f"{detail}; questions through torch: no question graph in {loaded.path}",
                 "run `rag models install` (it exports the graph; questions then take half the time)")  # fmt: skip


def _endpoint(settings: Settings) -> Check:
    from rag.llm.local_server import server_status

    if settings.uses_embedded_llm:
        level, status = server_status(settings)
        if level == "error":
            return Check("endpoint", False, status, "read the log it names; `rag llm start` tries again")
        return Check("endpoint", None, f"embedded, {settings.answer_base_url}: {status}")
    where = settings.answer_base_url or "https://api.openai.com/v1"
    return Check("endpoint", None, f"{where}, model {settings.answer_model}")


def _completion(settings: Settings) -> Check:
    from rag.llm.client import make_chat_model

    started = time.monotonic()
    try:
        chat = make_chat_model(settings.model_copy(update={"llm_max_tokens": 1, "llm_retries": 0}))
        text = "".join(chat.stream([{"role": "user", "content": "Say OK."}]))
    except RagError as exc:
        fix = "see `rag doctor`'s answer runtime line and the server log" if settings.uses_embedded_llm else (
            "check OPENAI_BASE_URL, OPENAI_API_KEY and RAG_LLM_MODEL")  # fmt: skip
        return Check("one-token answer", False, str(exc), fix)
    return Check("one-token answer", True, f"{chat.name} answered {text!r} in {time.monotonic() - started:.1f} s")


def _search(settings: Settings, embedder: Callable[[], SentenceTransformerEmbedder]) -> Check:
    from rag.retrieve.retriever import load_retriever

    started = time.monotonic()
    try:
        retriever = load_retriever(settings.model_copy(update={"translate_queries": False}), embedder())
        hits = retriever.search(PROBE_QUESTION, 1)
    except RagError as exc:
        return Check("one-query search", False, str(exc), "fix the index line above")
    if not hits:
        return Check("one-query search", False, f"no passage for {PROBE_QUESTION!r}", "run `rag index build`")
    took = time.monotonic() - started
    return Check("one-query search", True, f"{hits[0].chunk.id} for {PROBE_QUESTION!r} ({took:.1f} s with loading)")


def checks(settings: Settings) -> Iterator[Callable[[], Check]]:
    """Each check, in the order a user would look (cheap ones first)."""
    from rag.embed.embedder import embedder_for

    embedder = cache(lambda: embedder_for(settings))  # loaded once, for the precision and the search
    yield _versions
    yield _cpu
    if settings.uses_embedded_llm:
        yield lambda: _runtime(settings)
    yield lambda: _models(settings)
    yield lambda: _precision(settings, embedder)
    yield lambda: _index(settings)
    yield lambda: _endpoint(settings)
    yield lambda: _completion(settings)
    yield lambda: _search(settings, embedder)


def diagnose(settings: Settings) -> Iterator[Check]:
    """Run the checks one by one (a check that fails unexpectedly is reported, not raised)."""
    for check in checks(settings):
        try:
            yield check()
        except Exception as exc:  # noqa: BLE001 - the doctor reports every failure, whatever it is
            yield Check(getattr(check, "__name__", "check").strip("_<>"), False, f"{type(exc).__name__}: {exc}")
