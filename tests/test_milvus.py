"""The Milvus backend on a real Milvus Lite: the same retrieval as FAISS, updates that insert and delete only what
changed, filters inside the search, versions that never mix under concurrent readers, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.errors import IndexChangedError, IndexMismatchError, RagError
from rag.index.build import build_index, update_index
from rag.index.manifest import read_manifest
from rag.index.store import load_index
from rag.index.stores import milvus
from rag.index.stores.milvus import SLOTS, MilvusOptions, MilvusWriter, connect, lite_path
from rag.index.versions import live_path, live_version
from rag.retrieve.retriever import RetrievalWeights, Retriever
from rag.types import Filter, IndexSpec

from .conftest import DATA, QUESTIONS, FakeEmbedder
from .helpers import FAKE_SPEC, rag
from .test_evaluate import XQUAD, XQUAD_SLICE_FLOOR

pytestmark = pytest.mark.integration  # a real Milvus Lite (and, for some, the real model)

MILVUS = replace(FAKE_SPEC, store="milvus")
QUESTIONS_AR = ("ماو نينغ الاستخدام المزدوج", "لافروف في بكين", "الصادرات", "باتروشيف يانغ جيتشي فوجيان", "الصين")


def _retriever(index_dir: Path, spec: IndexSpec) -> Retriever:
    return Retriever(load_index(index_dir, spec), FakeEmbedder(), RetrievalWeights(lexical_weight=0.4))


def _rows(index_dir: Path) -> dict[str, int]:
    """Rows in the live chunk and sentence collections (stale ones included)."""
    m = read_manifest(index_dir)
    client = connect(lite_path("", index_dir))
    count = {}
    for kind in ("chunks", "sentences"):
        found = client.query(m.store[kind], filter="", output_fields=["count(*)"])
        count[kind] = int(found[0]["count(*)"])
    return count


def _seeds_in_milvus(tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the seed articles and its index in Milvus Lite."""
    data, index_dir = tmp_path / "data", tmp_path / "index"
    shutil.copytree(DATA, data)
    build_index(data, index_dir, FakeEmbedder(), MILVUS)
    return data, index_dir


def _seen(retriever: Retriever, question: str, k: int = 5, scope: Filter | None = None) -> list[tuple[str, float]]:
    return [(h.chunk.id, round(h.score, 4)) for h in retriever.search(question, k, scope)]


def test_milvus_retrieves_what_faiss_retrieves(data_copy: Path, tmp_path: Path) -> None:
    build_index(data_copy, tmp_path / "faiss", FakeEmbedder(), FAKE_SPEC)
    build_index(data_copy, tmp_path / "milvus", FakeEmbedder(), MILVUS)
    m = read_manifest(tmp_path / "milvus")
    assert m.kind == "milvus" and m.store["ann"]["kind"] == "hnsw" and m.store["next_key"] == m.chunks
    assert (tmp_path / "milvus" / "milvus.db").exists()  # Milvus Lite inside the index folder by default
    assert _rows(tmp_path / "milvus") == {"chunks": m.chunks, "sentences": m.sentences}
    faiss, milvus = _retriever(tmp_path / "faiss", FAKE_SPEC), _retriever(tmp_path / "milvus", MILVUS)
    for question in QUESTIONS_AR:
        assert _seen(milvus, question) == _seen(faiss, question), question
    chunk = faiss.index.chunks[7]
    spans, vectors = milvus.index.units_of(chunk)
    assert spans == faiss.index.units_of(chunk)[0] and np.allclose(vectors, faiss.index.units_of(chunk)[1], atol=1e-6)
    q = FakeEmbedder().embed_query("الصين وروسيا")
    assert np.isclose(milvus.index.best_unit_score(q), faiss.index.best_unit_score(q), atol=1e-6)


def test_a_filter_is_applied_inside_both_legs_on_both_backends(data_copy: Path, tmp_path: Path) -> None:
    build_index(data_copy, tmp_path / "faiss", FakeEmbedder(), FAKE_SPEC)
    build_index(data_copy, tmp_path / "milvus", FakeEmbedder(), MILVUS)
    for index_dir, spec in ((tmp_path / "faiss", FAKE_SPEC), (tmp_path / "milvus", MILVUS)):
        retriever = _retriever(index_dir, spec)
        articles = list(retriever.index.articles)
        unfiltered = {h.chunk.article_id for h in retriever.search("ماو نينغ الاستخدام المزدوج", 5)}
        other = next(a for a in articles if a not in unfiltered)  # an article the best hits do not come from
        size = len(retriever.index.records.positions_of(other))
        hits = retriever.search("ماو نينغ الاستخدام المزدوج", 5, Filter(articles=(other,)))
        assert {h.chunk.article_id for h in hits} == {other} and len(hits) == min(5, size)  # k when k exist
        two = [other, articles[0]]
        assert {h.chunk.article_id for h in retriever.search("الصين", 8, Filter(articles=tuple(two)))} <= set(two)
        with pytest.raises(RagError, match="No article 'nope' in the index"):
            retriever.search("الصين", 5, Filter(articles=("nope",)))
    faiss, milvus = _retriever(tmp_path / "faiss", FAKE_SPEC), _retriever(tmp_path / "milvus", MILVUS)
    assert _seen(milvus, "الصين", 5, Filter(articles=(other,))) == _seen(faiss, "الصين", 5, Filter(articles=(other,)))


def test_dates_and_outlets_filter_milvus_as_faiss(tmp_path: Path) -> None:
    news = Path(__file__).parent / "fixtures" / "news"
    build_index(news, tmp_path / "faiss", FakeEmbedder(), FAKE_SPEC)
    build_index(news, tmp_path / "milvus", FakeEmbedder(), MILVUS)
    faiss, milvus = _retriever(tmp_path / "faiss", FAKE_SPEC), _retriever(tmp_path / "milvus", MILVUS)
    question = "ماذا قالت ماو نينغ عن المواد ذات الاستخدام المزدوج؟"
    for scope in (Filter(since="2024-01-01"), Filter(until="2023-12-31"), Filter(outlets=("إذاعة الساحل",))):
        seen = _seen(milvus, question, 3, scope)
        assert seen and seen == _seen(faiss, question, 3, scope), scope
        for chunk_id, _ in seen:
            article = milvus.index.articles[chunk_id.split(":")[0]]
            assert (scope.since or "") <= (article.published or "")[:10] <= (scope.until or "9999")
            assert not scope.outlets or article.outlet in scope.outlets


def test_update_inserts_and_deletes_only_what_changed(tmp_path: Path) -> None:
    data, index_dir = _seeds_in_milvus(tmp_path)
    first = read_manifest(index_dir)
    before = load_index(index_dir, MILVUS)
    keys_before = {before.chunks[i].id: int(before.vectors.keys[i]) for i in range(len(before.chunks))}  # type: ignore[attr-defined]
    gone, changed = "001_27d9175388c3cb3c", "003_767b0b59c7a3495f"
    (data / f"{gone}.txt").unlink()
    (data / f"{changed}.txt").write_text(  # at the top: the article's end is furniture, which cleaning removes
        "جملة أخيرة جديدة عن الاجتماع في بكين.\n" + (DATA / f"{changed}.txt").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    (data / "new.txt").write_text("خبر جديد عن الصين وروسيا. والجملة الثانية عن الاجتماع.", encoding="utf-8")
    report = update_index(data, index_dir, FakeEmbedder(), MILVUS)
    assert (report.added, report.changed, report.removed, report.unchanged) == (("new",), (changed,), (gone,), 3)
    second = read_manifest(index_dir)
    assert second.store["chunks"] == first.store["chunks"]  # the same collections, written in place
    after = load_index(index_dir, MILVUS)
    keys_after = {after.chunks[i].id: int(after.vectors.keys[i]) for i in range(len(after.chunks))}  # type: ignore[attr-defined]
    kept = [c for c in keys_after if c.split(":")[0] not in (gone, changed, "new")]
    assert kept and all(keys_after[c] == keys_before[c] for c in kept)  # unchanged chunks keep their keys
    fresh = [k for c, k in keys_after.items() if c.split(":")[0] in (changed, "new")]
    assert min(fresh) >= first.store["next_key"] and second.store["next_key"] == max(fresh) + 1

    # the result equals a FAISS index of the same folder
    build_index(data, tmp_path / "faiss", FakeEmbedder(), FAKE_SPEC)
    faiss, milvus = (
        _retriever(tmp_path / "faiss", FAKE_SPEC),
        Retriever(after, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4)),
    )
    for question in (*QUESTIONS_AR, "خبر جديد عن الصين", "جملة أخيرة جديدة"):
        assert _seen(milvus, question) == _seen(faiss, question), question
    assert not any(h.chunk.article_id == gone for q in QUESTIONS_AR for h in milvus.search(q, 10))

    # the previous version's rows stay one switch longer (a reader that loaded it still finds them) ...
    rows = _rows(index_dir)
    assert rows["chunks"] > second.chunks
    old_reader = Retriever(before, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4))
    assert any(h.chunk.article_id == gone for h in old_reader.search("العلاقات الصينية الروسية", 10))
    # ... and are deleted when their last version is retired (the next switch)
    (data / "new2.txt").write_text("خبر آخر جديد تماما.", encoding="utf-8")
    update_index(data, index_dir, FakeEmbedder(), MILVUS)
    third = read_manifest(index_dir)
    assert _rows(index_dir) == {"chunks": third.chunks, "sentences": third.sentences}
    client = connect(lite_path("", index_dir))
    held = {int(r["key"]) for r in client.query(third.store["chunks"], filter="key >= 0", output_fields=["key"])}
    assert not {k for c, k in keys_before.items() if c.startswith(gone)} & held  # the removed article's rows
    sentences = client.query(third.store["sentences"], filter="key >= 0", output_fields=["chunk"])
    assert {int(r["chunk"]) for r in sentences} <= held  # no sentence row outlives its chunk
    assert update_index(data, index_dir, FakeEmbedder(), MILVUS).path is None  # nothing changed: nothing written
    assert _rows(index_dir) == {"chunks": third.chunks, "sentences": third.sentences}


def test_a_rebuild_makes_new_collections_and_drops_the_old_ones_with_their_version(
    data_copy: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    names = []
    for _ in range(3):
        build_index(data_copy, index_dir, FakeEmbedder(), MILVUS)
        names.append(read_manifest(index_dir).store["chunks"])
    assert len(set(names)) == 3
    client = connect(lite_path("", index_dir))
    collections = set(client.list_collections())
    assert names[0] not in collections and {names[1], names[2]} <= collections  # the previous one is kept
    assert client.describe_alias("rag_current_chunks")["collection_name"] == names[2]


def test_the_collections_of_a_build_killed_before_its_switch_are_dropped_by_the_next(tmp_path: Path) -> None:
    data, index_dir = _seeds_in_milvus(tmp_path)
    killed = index_dir / "v-20260101T000000-1-1.tmp"
    killed.mkdir()
    MilvusWriter(killed, 64, connect(lite_path("", index_dir)), "", "rag")  # created its collections, then died
    client = connect(lite_path("", index_dir))
    leftover = {"rag_v_20260101T000000_1_1_chunks", "rag_v_20260101T000000_1_1_sentences"}
    assert leftover <= set(client.list_collections())
    (data / "new.txt").write_text("خبر جديد.", encoding="utf-8")
    update_index(data, index_dir, FakeEmbedder(), MILVUS)
    assert not leftover & set(client.list_collections()) and not killed.exists()
    assert read_manifest(index_dir).store["chunks"] in client.list_collections()


def test_a_failed_update_leaves_no_rows_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, index_dir = _seeds_in_milvus(tmp_path)
    before = _rows(index_dir)
    (data / "new.txt").write_text("خبر جديد عن الصين وروسيا. والجملة الثانية.", encoding="utf-8")
    (data / "more.txt").write_text("خبر آخر عن الاجتماع. وجملة أخرى.", encoding="utf-8")

    class FailsLate(FakeEmbedder):
        def embed_documents(self, texts, progress=False):  # type: ignore[no-untyped-def]
            if self.calls:
                raise KeyboardInterrupt  # interrupted after the first batch was inserted
            return super().embed_documents(texts, progress)

    import rag.index.build
    import rag.index.stores.milvus

    monkeypatch.setattr(rag.index.build, "BATCH_ARTICLES", 6)  # the five seeds and more.txt, then new.txt
    monkeypatch.setattr(rag.index.stores.milvus, "INSERT_ROWS", 1)  # more.txt's rows reach Milvus before the failure
    inserted: list[int] = []
    real_insert = rag.index.stores.milvus.MilvusWriter._insert

    def counting(self, final):  # type: ignore[no-untyped-def]
        inserted.append(len(self._chunk_rows))
        real_insert(self, final)

    monkeypatch.setattr(rag.index.stores.milvus.MilvusWriter, "_insert", counting)
    with pytest.raises(KeyboardInterrupt):
        update_index(data, index_dir, FailsLate(), MILVUS)
    assert sum(inserted) > 0  # rows were inserted, then the update failed
    assert _rows(index_dir) == before and read_manifest(index_dir).chunks == before["chunks"]
    report = update_index(data, index_dir, FakeEmbedder(), MILVUS)
    assert sorted(report.added) == ["more", "new"]
    assert _rows(index_dir)["chunks"] == read_manifest(index_dir).chunks


def test_rows_a_killed_writer_inserted_are_removed_by_the_next_one(tmp_path: Path) -> None:
    data, index_dir = _seeds_in_milvus(tmp_path)
    m = read_manifest(index_dir)
    client = connect(lite_path("", index_dir))
    orphan = m.store["next_key"]  # what a writer killed mid-insert leaves: rows under keys no version knows
    client.insert(m.store["chunks"], [{"key": orphan, "article": "ghost", "vector": [0.1] * m.dim}])
    client.insert(m.store["sentences"], [{"key": orphan * SLOTS, "chunk": orphan, "vector": [0.1] * m.dim}])
    assert all(h.chunk.article_id != "ghost" for h in _retriever(index_dir, MILVUS).search("الصين", 10))
    (data / "new.txt").write_text("خبر جديد.", encoding="utf-8")
    update_index(data, index_dir, FakeEmbedder(), MILVUS)
    assert client.query(m.store["chunks"], filter='article == "ghost"', output_fields=["key"]) == []
    # new.txt (one sentence: no sentence rows) now has key `orphan`; the orphan's sentence row is gone
    assert client.query(m.store["sentences"], filter=f"chunk == {orphan}", output_fields=["key"]) == []
    assert _rows(index_dir)["chunks"] == read_manifest(index_dir).chunks


def _replace_articles(data: Path, texts: dict[str, str]) -> None:
    """The data folder holds exactly these articles (name: text) from now on."""
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    for name, text in texts.items():
        (data / f"{name}.txt").write_text(text, encoding="utf-8")


def test_readers_during_updates_see_one_complete_version(tmp_path: Path) -> None:
    data, index_dir = tmp_path / "data", tmp_path / "index"

    def generation(tag: str) -> None:
        _replace_articles(
            data,
            {
                f"{tag}-{n}": f"الخبر الجديد رقم {n} من الجيل {tag} عن الاجتماع. وجملة ثانية عن الاجتماع {n}."
                for n in range(6)
            },
        )

    spec = IndexSpec(FakeEmbedder.name, 40, 0, store="milvus")
    generation("g0")
    build_index(data, index_dir, FakeEmbedder(), spec)
    stop = threading.Event()
    seen: list[list[str]] = []
    errors: list[BaseException] = []

    def search() -> None:  # the page's sessions: threads of one process (Milvus Lite serves one process)
        version, retriever = None, None
        try:
            while not stop.is_set():
                if live_version(index_dir) != version:
                    version = live_version(index_dir)
                    retriever = Retriever(load_index(index_dir, spec), FakeEmbedder())
                assert retriever is not None
                try:
                    hits = retriever.search("الخبر الجديد عن الاجتماع", 6)
                except IndexChangedError:  # two switches during this one search (a slow machine): ask again
                    version = None
                    continue
                seen.append(sorted({h.chunk.article_id.split("-")[0] for h in hits}))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(3)]
    for t in readers:
        t.start()
    for tag in ("g1", "g2", "g3", "g4"):
        generation(tag)
        update_index(data, index_dir, FakeEmbedder(), spec)
    stop.set()
    for t in readers:
        t.join(timeout=60)
    assert not errors, errors[0]
    assert len(seen) > 20 and all(len(g) == 1 for g in seen), [g for g in seen if len(g) != 1][:5]  # one version, whole
    assert len({g[0] for g in seen}) >= 2  # the readers saw the index change under them


def test_a_search_on_a_version_retired_under_it_says_ask_again_never_answers_from_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, index_dir = tmp_path / "data", tmp_path / "index"
    spec = IndexSpec(FakeEmbedder.name, 40, 0, store="milvus")

    def generation(tag: str) -> None:
        topics = ("الصادرات الزراعية", "الانتخابات البلدية", "أسعار الوقود")
        texts = {f"{tag}-{n}": f"خبر من الجيل {tag} عن {topic} بعد الاجتماع." for n, topic in enumerate(topics)}
        _replace_articles(data, {**texts, "same": "خبر باق في كل الأجيال عن الاجتماع."})  # same: its rows stay

    generation("g0")
    build_index(data, index_dir, FakeEmbedder(), spec)
    oldest = Retriever(load_index(index_dir, spec), FakeEmbedder())
    assert len(oldest.search("خبر عن الاجتماع", 4)) == 4
    generation("g1")
    update_index(data, index_dir, FakeEmbedder(), spec)
    previous = Retriever(load_index(index_dir, spec), FakeEmbedder())
    assert len(oldest.search("خبر عن الاجتماع", 4)) == 4  # one switch behind: still whole
    generation("g2")
    during: list[BaseException] = []

    def release_then_search(*args: Any) -> None:  # a reader's search right after g0's rows are deleted
        delete_rows(*args)
        try:
            oldest.search("خبر عن الاجتماع", 4)
        except IndexChangedError as exc:
            during.append(exc)

    delete_rows = milvus.release
    monkeypatch.setattr(milvus, "release", release_then_search)
    update_index(data, index_dir, FakeEmbedder(), spec)  # g0's rows are deleted now; "same" keeps its rows
    assert during, "a search after the rows were deleted but before the folder was removed answered"
    with pytest.raises(IndexChangedError, match=r"Ask again.*live version") as caught:
        oldest.search("خبر عن الاجتماع", 4)
    assert oldest.index.path.name in str(caught.value)
    assert {h.chunk.article_id.split("-")[0] for h in previous.search("خبر عن الاجتماع", 4)} == {"g1", "same"}
    fresh = _retriever(index_dir, spec)
    assert {h.chunk.article_id.split("-")[0] for h in fresh.search("خبر عن الاجتماع", 4)} == {"g2", "same"}
    vectors = fresh.index.vectors
    vectors.client.delete(vectors.chunks_name, filter="article == 'same'")  # someone else's hand in the collection
    with pytest.raises(RagError, match=r"missing from the Milvus collection .*changed outside rag.*rag index build"):
        fresh.search("خبر باق في كل الأجيال", 4)


def test_the_milvus_token_is_a_secret(data_copy: Path, tmp_path: Path) -> None:
    from rag.config import Settings

    settings = Settings(milvus_token="user:s3cret-token", vector_store="milvus")
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(settings.store_options)
    assert MilvusOptions.of(settings.store_options).token == "user:s3cret-token"
    build_index(data_copy, tmp_path / "index", FakeEmbedder(), MILVUS, options=settings.store_options)
    assert "s3cret" not in (live_path(tmp_path / "index") / "manifest.json").read_text()  # Lite ignores it


def test_a_faiss_index_read_with_milvus_settings_asks_for_a_rebuild(data_copy: Path, tmp_path: Path) -> None:
    build_index(data_copy, tmp_path / "index", FakeEmbedder(), FAKE_SPEC)
    with pytest.raises(IndexMismatchError, match=r"store='faiss' but the settings say 'milvus': run `rag index build"):
        load_index(tmp_path / "index", MILVUS)


def test_a_lite_file_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "held.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pymilvus import MilvusClient\nc = MilvusClient({str(db)!r})\nprint('open', flush=True)\n"
            "import time\ntime.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(RagError, match="Milvus Lite serves one process at a time.*RAG_MILVUS_URI=http://"):
            connect(str(db))
    finally:
        holder.kill()
        holder.wait()


def test_the_cli_builds_searches_and_describes_a_milvus_index(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    env = {"RAG_VECTOR_STORE": "milvus", "RAG_TRANSLATE_QUERIES": "false"}
    index_dir = str(tmp_path / "index")
    built = rag("index", "build", "--data", str(DATA), "--index", index_dir, env=env)
    assert built.returncode == 0, built.stderr
    info = json.loads(rag("index", "info", "--index", index_dir, "--json", env=env).stdout)
    assert info["store"] == "milvus" and info["search"].startswith("HNSW") and info["milvus"]["chunks"]
    evaluated = rag("eval", "--questions", str(QUESTIONS), "--index", index_dir, "--json", env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["n"] == 7 and result["recall@5"] == 1.0 and result["recall@1"] >= round(6 / 7, 4)
    found = rag(
        "search", "ماذا قالت ماو نينغ عن تصدير البنود ذات الاستخدام المزدوج؟", "--index", index_dir, "--json", env=env
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["article_id"] == "000_5016804d4a167ba4"
    faiss = rag("search", "ما الخبر", "--index", index_dir, env={"RAG_VECTOR_STORE": "faiss"})
    assert faiss.returncode == 1 and "store='milvus' but the settings say 'faiss'" in faiss.stderr


def test_rag_eval_on_an_xquad_slice_with_milvus(real_embedder) -> None:  # type: ignore[no-untyped-def]
    env = {"RAG_VECTOR_STORE": "milvus"}
    done = rag("eval", "--xquad", str(XQUAD), "--query-lang", "ar,en", "--limit-articles", "8", "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["articles"] == 8
    for lang, floors in XQUAD_SLICE_FLOOR.items():
        assert result[lang]["n"] > 100
        for key, floor in floors.items():
            assert result[lang][key] >= floor, (
                f"{lang} {key} {result[lang][key]} fell below the recorded {floor} (Milvus)"
            )
