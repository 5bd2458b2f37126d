"""An index version's manifest: what it was built from and with, and the checks that refuse a stale or broken one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import IndexMismatchError, IndexMissingError
from rag.index.versions import CURRENT
from rag.types import IndexSpec

# 2: decimal points no longer end a sentence; 3: one sentence rule; 4: BM25 postings saved (lexical/);
# 5: vectors in memory-mapped float32 files (held once), an IVF index above ann_min_chunks, file sizes in the
#    manifest, records in SQLite read on demand, versions written batch by batch (rag/index/writer.py)
# 6: a vector store per index (faiss or milvus: `store`, `milvus`), sentence offsets kept with the records;
#    `chunk_vectors` added later with the default of the indexes built before it (own)
# 7: `sources` (the data files' checksums)
# 8: one `store` section (the kind and that backend's own parameters) instead of `store`, `ann` and `milvus`;
#    a format 7 manifest is read as 8 (the same files); `statements` added later (0 in the versions before it,
#    whose records hold none: `rag index update` finds them without embedding anything again); `embed_precision`
#    added later (fp32 for the versions before it)
FORMAT = 8


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an index was built from and with."""

    format: int
    model: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    lexical_terms: str
    articles: dict[str, str]  # article id -> sha256 of its file
    chunks: int
    sentences: int
    built_at: str
    build_seconds: float
    skipped: list[dict[str, str]]
    files: dict[str, str]  # file name -> sha256, to detect corruption
    sizes: dict[str, int]  # file name -> bytes
    store: dict[str, Any]  # where the vectors are: {"kind": "faiss" | "milvus" | ..., that backend's own parameters}
    chunk_vectors: str = "own"  # how chunk vectors were made: "own" pass, or "pooled" from sentence vectors
    sources: dict[str, str] = field(default_factory=dict)  # data file name -> sha256: articles, sidecars, feeds
    statements: int = 0  # the version of the rules that found its statements (rag/attribute); 0: none found
    embed_precision: str = "fp32"  # the encoder's precision for its vectors: fp32, bf16, or bf16+fp32 (both)

    @property
    def kind(self) -> str:
        """The kind of vector store (the registry's key)."""
        return str(self.store["kind"])

    @property
    def spec(self) -> IndexSpec:
        """What the index was built with."""
        return IndexSpec(
            self.model, self.chunk_tokens, self.chunk_overlap, self.lexical_terms, self.kind, self.chunk_vectors
        )


def read_manifest(index_dir: Path) -> Manifest:
    """The live version's manifest, or an error naming the build command."""
    path = index_dir / CURRENT / "manifest.json"
    if not path.exists():
        raise IndexMissingError(f"No index in {index_dir}: {build_hint(index_dir)}.")
    return parse_manifest(path, index_dir)


def parse_manifest(path: Path, index_dir: Path) -> Manifest:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("format") == 7:  # the same files, the store's fields apart
            store = {"kind": data.pop("store", "faiss"), "ann": data.pop("ann", {}), **data.pop("milvus", {})}
            data |= {"format": FORMAT, "store": store}
        if isinstance(data, dict) and data.get("format") != FORMAT:  # before its fields: they change with it
            raise IndexMismatchError(f"The index in {index_dir} has an old format: {build_hint(index_dir)}.")
        manifest = Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise IndexMismatchError(f"The index manifest {path} is corrupt: {build_hint(index_dir)}.") from exc
    return manifest


def build_hint(index_dir: Path) -> str:
    """The command that (re)builds this index."""
    option = "" if index_dir == Path("index") else f" --index {index_dir}"
    return f"run `rag index build{option}`"


def check_manifest(manifest: Manifest, index_dir: Path, spec: IndexSpec) -> None:
    """Stop when the index was built with other settings than the current ones."""
    built = asdict(manifest.spec)
    for key, value in asdict(spec).items():
        have = built[key]
        if have != value:
            raise IndexMismatchError(
                f"The index in {index_dir} was built with {key}={have!r} but the settings say {value!r}: "
                f"{build_hint(index_dir)}."
            )
