"""`rag index update` and the writer lock: incremental by content hash, equal to a rebuild, one writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexBusyError
from rag.index.build import build_index, update_index
from rag.index.store import load_index
from rag.index.versions import CURRENT, writer_lock
from rag.types import IndexSpec

from .conftest import FakeEmbedder
from .helpers import rag

SPEC = IndexSpec(FakeEmbedder.name, chunk_tokens=40, chunk_overlap=0)
TEXTS = {
    "a": "Trade between China and Russia reached a record. The figure rose by thirty percent.\nOfficials met.",
    "b": "Patrushev and Yang Jiechi met in Fujian province. They agreed on more joint drills.",
    "c": "Medvedev warned of a new military alliance. He spoke on Telegram about it.",
}


class CountingEmbedder(FakeEmbedder):
    """Records every passage it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self.texts += list(texts)
        return super().embed_documents(texts, progress)


def _write(folder: Path, texts: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def _load(index_dir: Path):  # type: ignore[no-untyped-def]
    return load_index(index_dir, SPEC)


def test_update_adds_changes_removes_and_reuses_the_rest(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", TEXTS)
    first = CountingEmbedder()
    report = update_index(data, tmp_path / "index", first, SPEC)  # no index yet: builds one
    assert sorted(report.added) == ["a", "b", "c"] and report.unchanged == 0
    (data / "a.txt").write_text(TEXTS["a"] + " A new closing sentence.", encoding="utf-8")  # changed
    (data / "c.txt").unlink()  # removed
    _write(data, {"d": "Lavrov visited Beijing for two days. The visit marked an anniversary."})  # added
    second = CountingEmbedder()
    report = update_index(data, tmp_path / "index", second, SPEC)
    assert (report.added, report.changed, report.removed, report.unchanged) == (("d",), ("a",), ("c",), 1)
    assert report.embedded == len(second.texts) > 0
    assert not any("Fujian" in t or "joint drills" in t for t in second.texts)  # b was not re-embedded
    assert any("closing sentence" in t for t in second.texts) and any("Lavrov" in t for t in second.texts)

    # the result equals a full rebuild of the same folder
    build_index(data, tmp_path / "rebuilt", FakeEmbedder(), SPEC)
    updated, rebuilt = _load(tmp_path / "index"), _load(tmp_path / "rebuilt")
    assert list(updated.chunks) == list(rebuilt.chunks) and list(updated.sentences) == list(rebuilt.sentences)
    assert updated.articles == rebuilt.articles
    assert np.allclose(updated.vectors.chunks, rebuilt.vectors.chunks) and np.allclose(
        updated.vectors.sentences, rebuilt.vectors.sentences
    )
    assert np.array_equal(updated.vectors.offsets, rebuilt.vectors.offsets)
    assert updated.manifest.articles == rebuilt.manifest.articles


def test_update_without_changes_writes_nothing(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", TEXTS)
    build_index(data, tmp_path / "index", FakeEmbedder(), SPEC)
    live = (tmp_path / "index" / CURRENT).resolve()
    embedder = CountingEmbedder()
    report = update_index(data, tmp_path / "index", embedder, SPEC)
    assert report.path is None and report.unchanged == 3 and embedder.texts == []
    assert (tmp_path / "index" / CURRENT).resolve() == live


def test_byte_identical_files_are_indexed_once(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", {**TEXTS, "b2": TEXTS["b"]})
    report = build_index(data, tmp_path / "index", FakeEmbedder(), SPEC)
    assert report.articles == 3
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [("b2.txt", "same bytes as b.txt")]
    assert "b2" not in _load(tmp_path / "index").articles


def test_second_writer_is_refused_or_waits(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", TEXTS)
    index = tmp_path / "index"
    with writer_lock(index):
        with pytest.raises(IndexBusyError) as err:
            build_index(data, index, FakeEmbedder(), SPEC)
        assert f"pid {os.getpid()}" in str(err.value) and "--wait" in str(err.value)
        waited: list[str] = []
        worker = threading.Thread(
            target=lambda: update_index(data, index, FakeEmbedder(), SPEC, wait=True, on_wait=waited.append)
        )
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive() and waited  # queued behind the lock, and said so
    worker.join(timeout=30)
    assert not worker.is_alive() and len(_load(index).articles) == 3


def _writer_in_another_process(index: Path) -> subprocess.Popen[str]:
    """Another process that holds the index's writer lock (until it is killed)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from rag.index.versions import writer_lock\nimport pathlib, time\n"
            f"with writer_lock(pathlib.Path({str(index)!r})):\n    print('locked', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_killed_writer_leaves_no_stuck_lock_and_no_leftovers(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", TEXTS)
    index = tmp_path / "index"
    holder = _writer_in_another_process(index)
    (index / "v-20260101T000000-1-1.tmp").mkdir()  # what a build killed mid-write leaves
    (index / "v-20250101T000000-1-1.retired").mkdir()  # what a writer killed while retiring a version leaves
    with pytest.raises(IndexBusyError):
        build_index(data, index, FakeEmbedder(), SPEC)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    build_index(data, index, FakeEmbedder(), SPEC)  # the kernel released the lock
    assert not list(index.glob("*.tmp")) and not list(index.glob("*.retired"))


def test_cli_busy_index_exits_3(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", TEXTS)
    holder = _writer_in_another_process(tmp_path / "index")
    try:
        done = rag("index", "update", "--data", str(data), "--index", str(tmp_path / "index"))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: ") and "--wait" in done.stderr and "Traceback" not in done.stderr
