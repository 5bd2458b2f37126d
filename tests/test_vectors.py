"""The vectors of a version: held once (memory-mapped), exact scores, and the IVF index above ann_min_chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.index.build import build_index
from rag.index.manifest import read_manifest
from rag.index.store import load_index
from rag.index.stores.faiss import AnnParams, Vectors, ann_params_for, write_vectors
from rag.retrieve.retriever import Retriever
from rag.types import StoreOptions

from .conftest import FakeEmbedder
from .helpers import FAKE_SPEC

DIM = 32


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _corpus(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered chunk vectors, and 0 to 4 sentence vectors near each chunk (grouped by chunk)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    chunks = _unit(centres[rng.integers(0, 40, n)] + 0.6 * rng.normal(size=(n, DIM)))
    counts = rng.integers(0, 5, n)
    owner = np.repeat(np.arange(n), counts)
    sentences = _unit(chunks[owner] + 0.5 * rng.normal(size=(len(owner), DIM)))
    return chunks, sentences, owner


def _written(tmp_path: Path, n: int, ann: AnnParams) -> tuple[Vectors, np.ndarray, np.ndarray, np.ndarray]:
    chunks, sentences, owner = _corpus(n)
    names = write_vectors(tmp_path, chunks, sentences, owner, ann)
    assert all((tmp_path / name).exists() for name in names) and ("ann.faiss" in names) == (ann.kind == "ivf")
    return Vectors.load(tmp_path, ann, DIM), chunks, sentences, owner


def test_scores_are_the_exact_chunk_and_best_sentence_cosines(tmp_path: Path) -> None:
    vectors, chunks, sentences, owner = _written(tmp_path, 300, AnnParams())
    assert isinstance(vectors.chunks, np.memmap) and isinstance(vectors.sentences, np.memmap)  # held once, mapped
    q = _unit(np.random.default_rng(1).normal(size=(1, DIM)))[0]
    ids = np.array([5, 0, 299, 17, 5], dtype=np.int64)
    own, best, row = vectors.scores(q, ids)
    assert np.allclose(own, chunks[ids] @ q, atol=1e-6)
    for i, cid in enumerate(ids):
        mine = np.flatnonzero(owner == cid)
        if len(mine):
            assert row[i] == mine[np.argmax(sentences[mine] @ q)] and np.isclose(best[i], (sentences[mine] @ q).max())
        else:
            assert row[i] == -1 and np.isclose(best[i], own[i])
        assert np.allclose(vectors.units(int(cid)), sentences[mine] if len(mine) else chunks[cid : cid + 1])


def test_flat_search_and_best_unit_are_exact(tmp_path: Path) -> None:
    vectors, chunks, sentences, owner = _written(tmp_path, 500, AnnParams())
    for seed in range(5):
        q = _unit(np.random.default_rng(seed + 10).normal(size=(1, DIM)))[0]
        assert list(vectors.nearest(q, 10)) == list(np.argsort(-(chunks @ q), kind="stable")[:10])
        singles = np.setdiff1d(np.arange(len(chunks)), owner)
        units = np.vstack([sentences, chunks[singles]])
        assert np.isclose(vectors.best_unit_score(q), (units @ q).max())


def test_ivf_finds_nearly_what_exact_search_finds(tmp_path: Path) -> None:
    n = 6000
    ann = ann_params_for(n, ann_min_chunks=1000)
    assert ann.kind == "ivf" and 1 < ann.nprobe < ann.nlist <= n // 39 and ann.trained_on <= n
    vectors, chunks, _, _ = _written(tmp_path, n, ann)
    assert vectors.ann is not None
    rng = np.random.default_rng(7)
    found = []
    for _ in range(50):
        q = _unit(chunks[rng.integers(n)][None] + 0.3 * rng.normal(size=(1, DIM)))[0]
        exact = set(np.argsort(-(chunks @ q))[:10])
        pool = vectors.nearest(q, 50)  # candidates; the retriever ranks them by their exact scores
        top = pool[np.argsort(-vectors.scores(q, pool)[0])[:10]]
        found.append(len(exact & set(top)) / 10)
    assert np.mean(found) >= 0.9, np.mean(found)
    assert ann_params_for(n, ann_min_chunks=n + 1) == AnnParams()  # below the threshold: exact


def test_write_refuses_sentences_out_of_chunk_order(tmp_path: Path) -> None:
    chunks, sentences, owner = _corpus(20)
    with pytest.raises(ValueError, match="chunk order"):
        write_vectors(tmp_path, chunks, sentences, owner[::-1].copy(), AnnParams())


def test_an_ivf_index_is_built_recorded_and_searched_like_a_flat_one(data_copy: Path, tmp_path: Path) -> None:
    build_index(data_copy, tmp_path / "flat", FakeEmbedder(), FAKE_SPEC)
    build_index(data_copy, tmp_path / "ivf", FakeEmbedder(), FAKE_SPEC, options=StoreOptions({"ann_min_chunks": 1}))
    assert read_manifest(tmp_path / "flat").store["ann"]["kind"] == "flat"
    m = read_manifest(tmp_path / "ivf")
    ann = m.store["ann"]
    assert ann["kind"] == "ivf" and ann["nlist"] == 1 and m.files["ann.faiss"]  # a few dozen chunks: one cell
    flat = Retriever(load_index(tmp_path / "flat", FAKE_SPEC), FakeEmbedder())
    ivf = Retriever(load_index(tmp_path / "ivf", FAKE_SPEC), FakeEmbedder())
    for question in ("ماو نينغ الاستخدام المزدوج", "لافروف في بكين", "الصادرات"):
        assert [h.chunk.id for h in ivf.search(question, 5)] == [h.chunk.id for h in flat.search(question, 5)]
