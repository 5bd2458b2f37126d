"""A build killed with SIGKILL at any moment leaves the previous index fully usable, and the next build works."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.index.build import build_index
from rag.index.store import load_index
from rag.types import IndexSpec

from .conftest import ROOT, FakeEmbedder

SPEC = IndexSpec(FakeEmbedder.name, chunk_tokens=40, chunk_overlap=0)
OLD = {f"old{i}": f"المقال القديم رقم {i}. وفيه جملة ثانية عن الموضوع {i}." for i in range(3)}
NEW = {f"new{i}": f"المقال الجديد رقم {i}. وفيه جملة ثانية عن الحدث {i}. وجملة ثالثة." for i in range(12)}

# A build slowed down in both phases (embedding, writing files) so that kills land in each of them.
SLOW_BUILD = """
import sys, time
from pathlib import Path
import rag.index.writer
from rag.index.build import build_index
from rag.types import IndexSpec
from tests.conftest import FakeEmbedder

class Slow(FakeEmbedder):
    def embed_documents(self, texts, progress=False):
        time.sleep(0.3)
        return super().embed_documents(texts, progress)

digest = rag.index.writer.file_sha256
def slow_digest(path):  # the version's files are hashed one by one while it is written
    time.sleep(0.04)
    return digest(path)
rag.index.writer.file_sha256 = slow_digest
print("started", flush=True)
build_index(Path(sys.argv[1]), Path(sys.argv[2]), Slow(), IndexSpec(Slow.name, 40, 0))
print("done", flush=True)
"""


def _write(folder: Path, texts: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("seed", range(6))
def test_killed_build_leaves_the_old_index_usable(tmp_path: Path, seed: int) -> None:
    index = tmp_path / "index"
    build_index(_write(tmp_path / "old", OLD), index, FakeEmbedder(), SPEC)
    new = _write(tmp_path / "new", NEW)
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, str(new), str(index)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    time.sleep(random.Random(seed).uniform(0.0, 1.6))  # embedding ~0.3 s, then ~0.45 s writing and hashing the files
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    live = load_index(index, SPEC)  # never a half-written version
    assert set(live.articles) in (set(OLD), set(NEW))
    print(f"seed {seed}: live version holds", "new" if set(live.articles) == set(NEW) else "old")
    report = build_index(new, index, FakeEmbedder(), SPEC)  # no stuck lock
    assert report.articles == len(NEW)
    assert set(load_index(index, SPEC).articles) == set(NEW)
    assert not list(index.glob("*.tmp")) and len(list(index.glob("v-*"))) <= 2  # the live one and the previous
