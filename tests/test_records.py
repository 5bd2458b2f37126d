"""The records of a version (articles, chunks, sentence spans): written once, read on demand, still readable after
later builds remove the version's folder."""

from __future__ import annotations

import threading
from pathlib import Path

from rag.index.build import build_index
from rag.index.records import Records, write_records
from rag.index.store import load_index
from rag.index.versions import live_path
from rag.types import Article, Chunk, Sentence

from .conftest import FakeEmbedder
from .helpers import FAKE_SPEC, build_fake

TEXT = "الجملة الأولى. الجملة الثانية. الجملة الثالثة."


def test_records_read_back_what_was_written(tmp_path: Path) -> None:
    articles = [Article("b", "عنوان ب", None, TEXT, "1" * 64), Article("a", "عنوان أ", "الجزيرة", TEXT[:14], "2" * 64)]
    chunks = [
        Chunk("b:0-30", "b", TEXT[:30], 0, 30),
        Chunk("b:15-46", "b", TEXT[15:46], 15, 46),
        Chunk("a:0-14", "a", TEXT[:14], 0, 14),
    ]
    sentences = [Sentence(0, 0, 14), Sentence(0, 15, 30), Sentence(1, 15, 30), Sentence(1, 31, 46)]
    write_records(tmp_path, articles, chunks, sentences)
    r = Records(tmp_path)
    assert list(r.chunks) == chunks and r.chunks[-1] == chunks[-1] and r.chunks[1:] == chunks[1:]
    assert list(r.sentences) == sentences and len(r.sentences) == 4
    assert list(r.articles) == ["b", "a"] and r.articles["a"] == articles[1] and "c" not in r.articles
    assert r.articles.get("c") is None and r.titles["b"] == "عنوان ب" and r.titles.get("c") is None
    assert r.position("b:15-46") == 1 and r.position("b:0-1") is None
    assert r.positions_of("b") == [0, 1] and r.positions_of("a") == [2] and r.positions_of("c") == []
    assert r.chunks.many([2, 0, 2, -1]) == [chunks[2], chunks[0], chunks[2], chunks[2]]  # one query, in that order
    assert r.chunks.many([]) == []


def test_a_loaded_index_outlives_its_folder(data_copy: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    build_fake(data_copy, index_dir)
    index = load_index(index_dir, FAKE_SPEC)
    first = live_path(index_dir)
    chunk = index.chunks[3]
    for _ in range(2):  # two more builds: the first version is removed
        build_index(data_copy, index_dir, FakeEmbedder(), FAKE_SPEC)
    assert not first.exists()
    assert (
        index.chunk(chunk.id) == chunk and index.articles[chunk.article_id].text[chunk.start : chunk.end] == chunk.text
    )
    errors: list[BaseException] = []

    def read() -> None:  # the page's sessions share one loaded index across threads
        try:
            for c in index.chunks:
                assert index.articles[c.article_id].text[c.start : c.end] == c.text
                index.units_of(c)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
