"""The vector store registry: a kind (`RAG_VECTOR_STORE`, the manifest's `store.kind`) and the module whose
`BACKEND` opens, writes, retires and describes it (`rag.index.backend.Backend`).

A new backend (pgvector, Qdrant, OpenSearch) is one module under `rag/index/stores/` and one line in `MODULES`;
its settings, if any, are fields of the one settings object, read through `StoreOptions`. Modules are imported
when their kind is first used (pymilvus costs seconds to import). `register` adds a backend object directly (a
test's in-memory store).
"""

from __future__ import annotations

import importlib

from rag.errors import RagError
from rag.index.backend import Backend

MODULES = {
    "faiss": "rag.index.stores.faiss",
    "milvus": "rag.index.stores.milvus",
}

_registered: dict[str, Backend] = {}


def kinds() -> tuple[str, ...]:
    """The kinds of vector store this installation knows."""
    return tuple(dict.fromkeys([*MODULES, *_registered]))


def backend(kind: str) -> Backend:
    """The backend of a kind, or an error naming the kinds there are."""
    if kind not in _registered:
        if kind not in MODULES:
            raise RagError(
                f"No vector store {kind!r}: RAG_VECTOR_STORE is one of {', '.join(kinds())} (an index built with "
                "another one needs the rag version that built it, or `rag index build`)."
            )
        _registered[kind] = importlib.import_module(MODULES[kind]).BACKEND
    return _registered[kind]


def register(found: Backend) -> None:
    """Add a backend under its kind (replacing one of the same kind)."""
    _registered[found.kind] = found


def unregister(kind: str) -> None:
    """Forget a backend added by `register` (the modules' own come back on their next use)."""
    _registered.pop(kind, None)
