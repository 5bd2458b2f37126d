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

from rag.attribute import statements as attribution
from rag.files import file_sha256
from rag.index.backend import Kept, VectorStoreWriter
from rag.index.lexical import Analyzer, BM25Writer
from rag.index.manifest import FORMAT, Manifest
from rag.index.records import RecordWriter
from rag.index.store import LEXICAL, retire_versions
from rag.index.stores import backend
from rag.index.versions import CURRENT, live_version
from rag.types import Article, Chunk, IndexSpec, Sentence, Statement, StoreOptions


class VersionWriter:
    """A new version folder (`v-….tmp` until committed) filled by `add`; `commit` writes the approximate index,
    the BM25 postings and the manifest, then points `current` at it atomically. Leaving the `with` block by
    an exception (or a kill: the next writer removes `.tmp` folders) leaves the live version untouched.

    Only the article hashes, the BM25 vocabulary and per-chunk counts are kept across batches. The vectors go to
    the writer of the spec's store kind (`live`, the live manifest when updating: a store of the same kind is told
    its `store` section, e.g. Milvus writes into the same collections, its keys going on from the last)."""

    def __init__(
        self,
        index_dir: Path,
        spec: IndexSpec,
        dim: int,
        options: StoreOptions | None = None,
        live: Manifest | None = None,
    ) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.index_dir = index_dir
        self.spec = spec
        self.dim = dim
        self.options = options or StoreOptions()
        self._previous = live_version(index_dir) or ""
        self._stamp = datetime.now(UTC)
        self.version = index_dir / f"v-{self._stamp:%Y%m%dT%H%M%S}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.tmp = self.version.with_name(self.version.name + ".tmp")
        self.tmp.mkdir()
        same = live is not None and live.kind == spec.store
        self._vectors: VectorStoreWriter = backend(spec.store).writer(
            self.tmp, dim, self.options, live.store if live is not None and same else None
        )
        self._records = RecordWriter(self.tmp)
        self._lexical = BM25Writer(self.tmp / LEXICAL, Analyzer(spec.lexical_terms))
        self._articles: dict[str, str] = {}

    def __enter__(self) -> VersionWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self._vectors.discard()
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
        self.add_parts(articles, [(chunks, sentences, (chunk_vectors, sentence_vectors))])

    def add_parts(
        self,
        articles: Sequence[Article],
        parts: Sequence[tuple[Sequence[Chunk], Sequence[Sentence], tuple[np.ndarray, np.ndarray] | Kept]],
        statements: Sequence[Statement] | None = None,
    ) -> None:
        """A batch of articles and, in the same order, runs of their chunks and sentences (`chunk` counted within
        the run) with either new vectors (chunk vectors, sentence vectors) or vectors kept from the live version;
        the articles' statements (found here when not given: rag/attribute/statements.py)."""
        all_chunks: list[Chunk] = []
        all_sentences: list[Sentence] = []
        for chunks, sentences, vectors in parts:
            if isinstance(vectors, Kept):
                self._vectors.add_kept(vectors)
            else:
                owners = np.array([s.chunk for s in sentences], dtype=np.int64)
                self._vectors.add(vectors[0], vectors[1], owners, [c.article_id for c in chunks])
            all_sentences += [Sentence(s.chunk + len(all_chunks), s.start, s.end) for s in sentences]
            all_chunks += chunks
        if statements is None:
            statements = attribution.extract_all(articles)
        self._records.add(articles, all_chunks, all_sentences, statements)
        self._lexical.add([c.text for c in all_chunks])
        self._articles |= {a.id: a.sha256 for a in articles}

    @property
    def chunks(self) -> int:
        """Chunks added so far."""
        return self._vectors.n

    def commit(
        self,
        skipped: list[dict[str, str]],
        build_seconds: float,
        sources: dict[str, str] | None = None,
        precision: str = "fp32",
    ) -> Path:
        """Finish the version and make it the live one; the version's folder. `sources`: the data files read
        (name -> sha256), which decide whether the index is current; `precision`: the encoder's for its vectors."""
        tmp = self.tmp
        vector_files, section = self._vectors.close()
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
            store={"kind": self.spec.store, **section},
            chunk_vectors=self.spec.chunk_vectors,
            sources=dict(sources or {}),
            statements=attribution.VERSION,
            embed_precision=precision,
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
        self._vectors.switched()
        retire_versions(self.index_dir, {self.version.name, self._previous}, self.options)
        return self.version
