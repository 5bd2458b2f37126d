"""Writing an index version batch by batch (bounded memory), then switching `current` to it in one rename."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import numpy as np

from rag.files import file_sha256
from rag.index.lexical import Analyzer, BM25Writer
from rag.index.records import RecordWriter
from rag.index.store import CURRENT, FORMAT, LEXICAL, Manifest, live_version, remove_old_versions
from rag.index.vectors import ANN_MIN_CHUNKS, VectorWriter, ann_params_for
from rag.types import Article, Chunk, IndexSpec, Sentence


class VersionWriter:
    """A new version folder (`v-….tmp` until committed) filled by `add`; `commit` writes the approximate index,
    the BM25 postings and the manifest, then points `current` at it atomically. Leaving the `with` block by
    an exception (or a kill: the next writer removes `.tmp` folders) leaves the live version untouched.

    Only the article hashes, the BM25 vocabulary and per-chunk counts are kept across batches."""

    def __init__(self, index_dir: Path, spec: IndexSpec, dim: int) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.index_dir = index_dir
        self.spec = spec
        self.dim = dim
        self._previous = live_version(index_dir) or ""
        self._stamp = datetime.now(UTC)
        self.version = index_dir / f"v-{self._stamp:%Y%m%dT%H%M%S}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.tmp = self.version.with_name(self.version.name + ".tmp")
        self.tmp.mkdir()
        self._vectors = VectorWriter(self.tmp, dim)
        self._records = RecordWriter(self.tmp)
        self._lexical = BM25Writer(self.tmp / LEXICAL, Analyzer(spec.lexical_terms))
        self._articles: dict[str, str] = {}

    def __enter__(self) -> VersionWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def add(
        self,
        articles: Sequence[Article],
        chunks: Sequence[Chunk],
        chunk_vectors: np.ndarray,
        sentences: Sequence[Sentence],
        sentence_vectors: np.ndarray,
    ) -> None:
        """A batch of articles with their chunks (in article order) and the chunks' sentences (`chunk` counted
        within the batch, in chunk order), and the vectors of both."""
        self._vectors.add(chunk_vectors, sentence_vectors, np.array([s.chunk for s in sentences], dtype=np.int64))
        self._records.add(articles, chunks, sentences)
        self._lexical.add([c.text for c in chunks])
        self._articles |= {a.id: a.sha256 for a in articles}

    @property
    def chunks(self) -> int:
        """Chunks added so far."""
        return self._vectors.n

    def commit(self, skipped: list[dict[str, str]], build_seconds: float, ann_min_chunks: int = ANN_MIN_CHUNKS) -> Path:
        """Finish the version and make it the live one; the version's folder."""
        tmp = self.tmp
        ann = ann_params_for(self._vectors.n, ann_min_chunks)
        vector_files = self._vectors.close(ann)
        record_files = self._records.close()
        lexical = self._lexical.close()
        written = [*vector_files, *record_files, *(f"{LEXICAL}/{name}" for name in lexical)]
        manifest = Manifest(
            format=FORMAT,
            model=self.spec.model,
            dim=self.dim,
            chunk_tokens=self.spec.chunk_tokens,
            chunk_overlap=self.spec.chunk_overlap,
            lexical_terms=self.spec.lexical_terms,
            articles=self._articles,
            chunks=self._vectors.n,
            sentences=self._records.sentences,
            built_at=self._stamp.isoformat(timespec="seconds"),
            build_seconds=round(build_seconds, 2),
            skipped=skipped,
            files={name: file_sha256(tmp / name) for name in written},
            sizes={name: (tmp / name).stat().st_size for name in written},
            ann=asdict(ann),
        )
        (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=2))
        for name in (*written, "manifest.json"):
            with (tmp / name).open("rb") as f:
                os.fsync(f.fileno())
        tmp.rename(self.version)
        link = self.index_dir / f".{CURRENT}.{os.getpid()}"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(self.version.name)
        os.replace(link, self.index_dir / CURRENT)  # the atomic switch
        remove_old_versions(self.index_dir, keep={self.version.name, self._previous})
        return self.version
