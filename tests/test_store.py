"""The index on disk: manifest checks, corruption detection, atomic swaps, staleness."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexMismatchError, IndexMissingError
from rag.index.build import build_index, index_is_current
from rag.index.manifest import read_manifest
from rag.index.store import load_index
from rag.index.versions import live_path
from rag.retrieve.retriever import Retriever
from rag.text.arabic import for_embedding

from .conftest import FakeEmbedder
from .helpers import FAKE_SPEC, build_fake


def test_build_writes_manifest_and_loads(data_copy: Path, tmp_path: Path) -> None:
    report = build_fake(data_copy, tmp_path / "index")
    assert report.articles == 5 and report.chunks > 5 and not report.skipped
    m = read_manifest(tmp_path / "index")
    assert m.model == "fake-embedder" and m.dim == 64 and m.chunks == report.chunks
    assert (m.chunk_tokens, m.chunk_overlap) == (60, 10)
    assert set(m.articles) == {p.stem for p in data_copy.glob("*.txt")}
    assert all(len(h) == 64 for h in m.articles.values()) and m.built_at
    index = load_index(tmp_path / "index", FAKE_SPEC)
    assert len(index.chunks) == report.chunks
    hits = Retriever(index, FakeEmbedder()).search("ماو نينغ الاستخدام المزدوج", 3)
    assert len(hits) == 3 and hits[0].score >= hits[1].score


@pytest.mark.parametrize(
    ("key", "value"),
    [("model", "other-model"), ("chunk_tokens", 200), ("chunk_overlap", 0), ("chunk_vectors", "pooled")],
)
def test_manifest_mismatch_names_the_rebuild_command(data_copy: Path, tmp_path: Path, key: str, value: object) -> None:
    build_fake(data_copy, tmp_path / "index")
    with pytest.raises(IndexMismatchError, match=r"rag index build") as err:
        load_index(tmp_path / "index", replace(FAKE_SPEC, **{key: value}))
    assert key in str(err.value)


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match=r"rag index build --index"):
        load_index(tmp_path / "none", FAKE_SPEC)


@pytest.mark.parametrize("name", ["chunk_vectors.f32", "sentence_vectors.f32", "records.sqlite", "sentence_spans.i64"])
def test_corrupt_files_are_detected(data_copy: Path, tmp_path: Path, name: str) -> None:
    build_fake(data_copy, tmp_path / "index")
    path = live_path(tmp_path / "index") / name
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(IndexMismatchError, match="corrupt"):
        load_index(tmp_path / "index", FAKE_SPEC)


def test_edited_manifest_is_detected(data_copy: Path, tmp_path: Path) -> None:
    build_fake(data_copy, tmp_path / "index")
    path = live_path(tmp_path / "index") / "manifest.json"
    path.write_text(path.read_text()[:-30])
    with pytest.raises(IndexMismatchError, match="manifest"):
        load_index(tmp_path / "index", FAKE_SPEC)


def test_failed_build_keeps_the_old_index(data_copy: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_fake(data_copy, index_dir)
    before = read_manifest(index_dir)

    class Exploding(FakeEmbedder):
        def embed_documents(self, texts, progress=False):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt  # an interrupted build

    (data_copy / "new.txt").write_text("خبر جديد عن الصين وروسيا والعلاقات بينهما.", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build_fake(data_copy, index_dir, Exploding())
    assert read_manifest(index_dir) == before
    load_index(index_dir, FAKE_SPEC)


def test_rebuild_swaps_versions_and_cleans_up(data_copy: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    first = build_fake(data_copy, index_dir).path
    (data_copy / "new.txt").write_text("خبر جديد عن الصين وروسيا والعلاقات بينهما.", encoding="utf-8")
    second = build_fake(data_copy, index_dir).path
    assert first != second and first.exists() and live_path(index_dir) == second  # the previous one is kept
    third = build_fake(data_copy, index_dir).path
    assert not first.exists() and second.exists() and live_path(index_dir) == third  # older ones are removed
    assert "new" in read_manifest(index_dir).articles
    assert not [p for p in index_dir.iterdir() if p.name.endswith(".tmp")]


def test_staleness(data_copy: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert not index_is_current(data_copy, index_dir, FAKE_SPEC)
    build_fake(data_copy, index_dir)
    assert index_is_current(data_copy, index_dir, FAKE_SPEC)
    assert not index_is_current(data_copy, index_dir, replace(FAKE_SPEC, chunk_tokens=61))
    (data_copy / "001_27d9175388c3cb3c.txt").write_text("نص معدل لهذا المقال عن الصين.", encoding="utf-8")
    assert not index_is_current(data_copy, index_dir, FAKE_SPEC)


def test_skipped_files_are_in_the_manifest(data_copy: Path, tmp_path: Path) -> None:
    (data_copy / "broken.txt").write_bytes(b"bad \xc3\x28 bytes")
    report = build_fake(data_copy, tmp_path / "index")
    assert [Path(s.path).name for s in report.skipped] == ["broken.txt"]
    m = read_manifest(tmp_path / "index")
    assert json.dumps(m.skipped).count("broken.txt") == 1
    assert index_is_current(data_copy, tmp_path / "index", FAKE_SPEC)


def test_chunks_that_do_not_match_the_vectors_are_detected(data_copy: Path, tmp_path: Path) -> None:
    # even when someone rewrote the manifest's checksum to match the edited chunks file
    build_fake(data_copy, tmp_path / "index")
    version = live_path(tmp_path / "index")
    records = version / "records.sqlite"
    with sqlite3.connect(records) as db:
        db.execute("DELETE FROM chunks WHERE n = (SELECT MAX(n) FROM chunks)")
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"]["records.sqlite"] = hashlib.sha256(records.read_bytes()).hexdigest()
    manifest["sizes"]["records.sqlite"] = records.stat().st_size
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="does not match its chunks.*rag index build"):
        load_index(tmp_path / "index", FAKE_SPEC)


def test_manifest_edited_to_other_counts_is_detected(data_copy: Path, tmp_path: Path) -> None:
    build_fake(data_copy, tmp_path / "index")
    path = live_path(tmp_path / "index") / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["chunks"] += 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="rag index build"):
        load_index(tmp_path / "index", FAKE_SPEC)


def test_an_index_of_an_older_format_asks_for_a_rebuild_not_corrupt(data_copy: Path, tmp_path: Path) -> None:
    build_fake(data_copy, tmp_path / "index")
    manifest = live_path(tmp_path / "index") / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format"] = 3  # format 3 had no lexical_terms and no saved BM25 postings
    del data["lexical_terms"]
    manifest.write_text(json.dumps(data))
    for load in (lambda: read_manifest(tmp_path / "index"), lambda: load_index(tmp_path / "index", FAKE_SPEC)):
        with pytest.raises(IndexMismatchError, match="has an old format: run `rag index build --index "):
            load()


class Recording(FakeEmbedder):
    """The fake embedder, keeping the texts of each call to embed_documents."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    @property
    def seen(self) -> list[str]:
        return [t for b in self.batches for t in b]

    def embed_documents(self, texts, progress=False):  # type: ignore[no-untyped-def]
        self.batches.append(list(texts))
        return super().embed_documents(texts, progress)


def test_a_build_in_batches_holds_one_batch_and_equals_a_build_in_one(
    data_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.build

    one_call = Recording()
    build_fake(data_copy, tmp_path / "one", one_call)
    assert len(one_call.batches) == 1
    monkeypatch.setattr(rag.index.build, "BATCH_ARTICLES", 2)
    batched_calls = Recording()
    build_fake(data_copy, tmp_path / "batched", batched_calls)
    calls = [len(b) for b in batched_calls.batches]
    assert len(calls) == 3 and max(calls) < sum(calls)  # 5 articles: 2 + 2 + 1, one batch embedded at a time
    one, batched = load_index(tmp_path / "one", FAKE_SPEC), load_index(tmp_path / "batched", FAKE_SPEC)
    assert list(batched.chunks) == list(one.chunks) and list(batched.sentences) == list(one.sentences)
    assert np.allclose(batched.vectors.chunks, one.vectors.chunks, atol=1e-6)
    assert np.allclose(batched.vectors.sentences, one.vectors.sentences, atol=1e-6)
    assert np.array_equal(batched.vectors.offsets, one.vectors.offsets) and batched.articles == one.articles


def test_pooled_chunk_vectors_are_the_token_weighted_mean_of_their_sentences(data_copy: Path, tmp_path: Path) -> None:
    recording = Recording()
    spec = replace(FAKE_SPEC, chunk_vectors="pooled")
    build_index(data_copy, tmp_path / "index", recording, spec)
    index = load_index(tmp_path / "index", spec)
    assert read_manifest(tmp_path / "index").chunk_vectors == "pooled"
    fake, pooled, lone = FakeEmbedder(), 0, 0
    for i, chunk in enumerate(index.chunks):
        rows = range(int(index.vectors.offsets[i]), int(index.vectors.offsets[i + 1]))
        if not rows:  # a one-sentence chunk is embedded itself
            assert np.allclose(index.vectors.chunks[i], fake._vec(for_embedding(chunk.text)), atol=1e-6)
            lone += 1
            continue
        texts = [index.articles[chunk.article_id].text[index.sentences[j].start : index.sentences[j].end] for j in rows]
        mean = sum(fake.count_tokens(t) * fake._vec(for_embedding(t)) for t in texts)
        assert np.allclose(index.vectors.chunks[i], mean / np.linalg.norm(mean), atol=1e-5)
        assert for_embedding(chunk.text) not in recording.seen  # not the chunk's own pass
        pooled += 1
    assert pooled > 5
    # each sentence and each one-sentence chunk embedded, no chunk that has sentences
    assert len(recording.seen) == len(index.sentences) + lone


def test_own_chunk_vectors_the_default_embed_every_chunk_as_well(data_copy: Path, tmp_path: Path) -> None:
    recording = Recording()
    build_fake(data_copy, tmp_path / "index", recording)
    index = load_index(tmp_path / "index", FAKE_SPEC)
    assert read_manifest(tmp_path / "index").chunk_vectors == "own"  # the default
    assert len(recording.seen) == len(index.chunks) + len(index.sentences)
    fake = FakeEmbedder()
    for i, chunk in enumerate(index.chunks):
        assert np.allclose(index.vectors.chunks[i], fake._vec(for_embedding(chunk.text)), atol=1e-6)


def test_an_index_built_before_chunk_vectors_were_recorded_still_loads(data_copy: Path, tmp_path: Path) -> None:
    build_fake(data_copy, tmp_path / "index")
    manifest = live_path(tmp_path / "index") / "manifest.json"
    data = json.loads(manifest.read_text())
    del data["chunk_vectors"]  # as written before the setting existed: every chunk had its own pass
    manifest.write_text(json.dumps(data))
    assert read_manifest(tmp_path / "index").spec == FAKE_SPEC
    assert len(load_index(tmp_path / "index", FAKE_SPEC).chunks) > 5
    with pytest.raises(IndexMismatchError, match="chunk_vectors"):
        load_index(tmp_path / "index", replace(FAKE_SPEC, chunk_vectors="pooled"))
