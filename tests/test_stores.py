"""The vector store registry: a backend is one module and one registry line. A tiny in-memory backend, written and
registered here, builds, loads, searches, updates, retires and describes an index with nothing else edited; the
manifest holds one `store` section; each backend checks its own files; an older manifest is read as the new one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.errors import IndexMismatchError, RagError
from rag.index.backend import Fetched, Kept, StoredVersion, sentence_counts
from rag.index.build import build_index, update_index
from rag.index.manifest import read_manifest
from rag.index.store import load_index
from rag.index.stores import backend, kinds, register, unregister
from rag.index.stores.faiss import Vectors
from rag.index.versions import live_path
from rag.types import StoreOptions

from .conftest import FakeEmbedder
from .helpers import FAKE_SPEC, build_fake, rag

HELD: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # version name -> chunk, sentence vectors, offsets


class MemoryWriter:
    """Keeps a version's vectors in this process (`VectorStoreWriter`)."""

    def __init__(self, folder: Path, dim: int) -> None:
        self.name, self.dim = folder.name.removesuffix(".tmp"), dim
        self.chunks: list[np.ndarray] = []
        self.sentences: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.n = 0

    def add(
        self, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, sentence_chunks: np.ndarray, _: list[str]
    ) -> None:
        self._keep(chunk_vectors, sentence_vectors, sentence_counts(sentence_chunks, len(chunk_vectors)))

    def add_kept(self, kept: Kept) -> None:
        assert isinstance(kept.held, Fetched)
        self._keep(kept.held.chunk_vectors, kept.held.sentence_vectors, kept.counts)

    def _keep(self, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, counts: np.ndarray) -> None:
        self.chunks.append(np.asarray(chunk_vectors, np.float32).reshape(-1, self.dim))
        self.sentences.append(np.asarray(sentence_vectors, np.float32).reshape(-1, self.dim))
        self.counts.append(counts)
        self.n += len(counts)

    def close(self) -> tuple[list[str], dict[str, Any]]:
        counts = np.concatenate(self.counts) if self.counts else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        empty = np.zeros((0, self.dim), np.float32)
        HELD[self.name] = (np.vstack([empty, *self.chunks]), np.vstack([empty, *self.sentences]), offsets)
        return [], {"held": self.name}  # no file in the version folder: the vectors live in memory

    def switched(self) -> None:
        pass

    def discard(self) -> None:
        HELD.pop(self.name, None)


class MemoryBackend:
    """The whole backend: what `rag/index/stores/memory.py` would hold, with `"memory": ...` in MODULES."""

    kind = "memory"

    def writer(self, folder: Path, dim: int, options: StoreOptions, live: Mapping[str, Any] | None) -> MemoryWriter:
        return MemoryWriter(folder, dim)

    def open(self, version: StoredVersion, dim: int, options: StoreOptions) -> Vectors:
        name = str(version.section["held"])
        if name not in HELD:
            raise ValueError(f"its vectors ({name}) are not held by this process")
        chunks, sentences, offsets = HELD[name]
        return Vectors(chunks, sentences, offsets, None, 0)  # exact search over arrays in memory

    def retire(
        self, index_dir: Path, retired: list[StoredVersion], kept: list[StoredVersion], options: StoreOptions
    ) -> None:
        for version in retired:
            HELD.pop(str(version.section["held"]), None)

    def describe(self, section: Mapping[str, Any], index_dir: Path) -> dict[str, Any]:
        return {"search": "exact, in memory", "held": section["held"]}


MEMORY_SPEC = replace(FAKE_SPEC, store="memory")


@pytest.fixture
def memory() -> Iterator[None]:
    register(MemoryBackend())  # the one registry line
    yield
    unregister("memory")
    HELD.clear()


def test_a_backend_registered_from_a_test_builds_searches_updates_and_retires(
    memory: None, data_copy: Path, tmp_path: Path
) -> None:
    assert "memory" in kinds()
    build_fake(data_copy, tmp_path / "faiss")
    build_index(data_copy, tmp_path / "memory", FakeEmbedder(), MEMORY_SPEC)
    manifest = read_manifest(tmp_path / "memory")
    assert manifest.kind == "memory" and set(manifest.store) == {"kind", "held"}
    assert not any(name.endswith((".f32", ".faiss")) for name in manifest.files)  # the vectors are not in files
    assert manifest.store["held"] in HELD

    faiss_index, memory_index = load_index(tmp_path / "faiss", FAKE_SPEC), load_index(tmp_path / "memory", MEMORY_SPEC)
    query = FakeEmbedder().embed_queries(["Mao Ning dual-use exports", "Lavrov visited Beijing"])
    assert [list(ids) for ids in memory_index.vectors.search(query, 5)] == [
        list(ids) for ids in faiss_index.vectors.search(query, 5)
    ]
    ids = np.arange(memory_index.count(), dtype=np.int64)
    assert np.allclose(
        memory_index.dense_scores([(query[0], 1.0)], ids, 0.5), faiss_index.dense_scores([(query[0], 1.0)], ids, 0.5)
    )

    first = manifest.store["held"]
    (data_copy / "added.txt").write_text("Lavrov visited Beijing for two days. The visit marked an anniversary.")
    embedder = FakeEmbedder()
    report = update_index(data_copy, tmp_path / "memory", embedder, MEMORY_SPEC)
    assert report.added == ("added",) and report.unchanged == len(manifest.articles)  # the others' vectors kept
    update_index(data_copy, tmp_path / "memory", FakeEmbedder(), MEMORY_SPEC)  # nothing changed: no new version
    (data_copy / "added.txt").write_text("Lavrov left Beijing. Talks are to go on next year.")
    update_index(data_copy, tmp_path / "memory", FakeEmbedder(), MEMORY_SPEC)
    assert first not in HELD  # the first version was retired by the registry's backend: its vectors are gone
    assert len(HELD) == 2  # the live version and the one before it
    assert load_index(tmp_path / "memory", MEMORY_SPEC).count() > memory_index.count()


def test_rag_index_info_prints_what_the_backend_describes(memory: None, data_copy: Path, tmp_path: Path) -> None:
    build_index(data_copy, tmp_path / "index", FakeEmbedder(), MEMORY_SPEC)
    done = rag("index", "info", "--index", str(tmp_path / "index"), "--json", env={"RAG_VECTOR_STORE": "memory"})
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["store"] == "memory" and info["search"] == "exact, in memory"
    assert info["held"] == read_manifest(tmp_path / "index").store["held"]


def test_an_index_of_a_kind_not_installed_is_a_clear_error(memory: None, data_copy: Path, tmp_path: Path) -> None:
    build_index(data_copy, tmp_path / "index", FakeEmbedder(), MEMORY_SPEC)
    unregister("memory")
    with pytest.raises(RagError, match="No vector store 'memory': RAG_VECTOR_STORE is one of faiss, milvus"):
        load_index(tmp_path / "index", MEMORY_SPEC)
    with pytest.raises(RagError, match="No vector store 'qdrant'"):
        backend("qdrant")


def test_the_faiss_backend_checks_its_own_files(data_copy: Path, tmp_path: Path) -> None:
    build_fake(data_copy, tmp_path / "index")
    version = live_path(tmp_path / "index")
    vectors = version / "sentence_vectors.f32"
    vectors.write_bytes(vectors.read_bytes()[: -FakeEmbedder.dim * 4])  # one sentence vector fewer
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["sizes"]["sentence_vectors.f32"] = vectors.stat().st_size  # as if someone rewrote the size too
    manifest["files"]["sentence_vectors.f32"] = hashlib.sha256(vectors.read_bytes()).hexdigest()
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="do not match sentence_offsets.npy.*rag index build"):
        load_index(tmp_path / "index", FAKE_SPEC)


def test_a_format_7_manifest_is_read_without_a_rebuild(data_copy: Path, tmp_path: Path) -> None:
    build_fake(data_copy, tmp_path / "index")
    before = load_index(tmp_path / "index", FAKE_SPEC)
    query = FakeEmbedder().embed_queries(["Mao Ning"])
    path = live_path(tmp_path / "index") / "manifest.json"
    data = json.loads(path.read_text())
    store = data.pop("store")
    data |= {"format": 7, "store": store.pop("kind"), "ann": store.pop("ann"), "milvus": store}  # as 7 wrote it
    path.write_text(json.dumps(data))
    after = load_index(tmp_path / "index", FAKE_SPEC)
    assert after.manifest.store == {"kind": "faiss", "ann": before.manifest.store["ann"]}
    assert list(after.vectors.search(query, 5)[0]) == list(before.vectors.search(query, 5)[0])
