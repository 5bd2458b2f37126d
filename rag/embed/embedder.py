"""Embeddings: multilingual-e5 through sentence-transformers, with its query/passage prompts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import DEFAULT_EMBEDDING_MODEL, Settings
from rag.errors import ModelNotInstalledError, RagError
from rag.provision.paths import e5_dir, e5_installed


class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Normalized float32 vectors of passages, shape (n, dim)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Normalized float32 vector of a question, shape (dim,)."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors of questions in one batch, shape (n, dim)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in `text` (no special tokens)."""
        ...


def resolve_model_path(name: str, models_dir: Path) -> str:
    """Where to load `name` from: a local path, the Hugging Face cache, or the offline copy."""
    if Path(name).is_dir():
        return name
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - any cache miss falls through to the offline copy
        pass
    if name == DEFAULT_EMBEDDING_MODEL:
        if e5_installed(models_dir):
            return str(e5_dir(models_dir))
        raise ModelNotInstalledError(
            f"The embedding model {name} is not installed in {models_dir}: run `rag models install`."
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotInstalledError(f"Embedding model {name} is not cached and HF_HUB_OFFLINE=1: download it first.")
    return name  # let sentence-transformers fetch it from the hub


class SentenceTransformerEmbedder:
    """A sentence-transformers model with e5's `query: ` / `passage: ` prompts."""

    def __init__(self, name: str, models_dir: Path, batch_size: int = 16, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.path = resolve_model_path(name, models_dir)
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.model = SentenceTransformer(self.path, device=self.device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self._has_prompts = "query" in self.model.prompts

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool) -> np.ndarray:
        vecs = self.model.encode(
            list(texts),
            prompt_name=prompt if self._has_prompts else None,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Normalized float32 vectors of passages, shape (n, dim)."""
        return self._encode(texts, "passage", progress)

    def embed_query(self, text: str) -> np.ndarray:
        """Normalized float32 vector of a question, shape (dim,)."""
        return self._encode([text], "query", False)[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors of questions in one batch, shape (n, dim)."""
        return self._encode(texts, "query", False)

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in `text` (no special tokens)."""
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def embedder_for(settings: Settings) -> SentenceTransformerEmbedder:
    """The embedding model the settings name (RAG_EMBEDDING_MODEL, RAG_MODELS_DIR, RAG_EMBED_BATCH_SIZE,
    RAG_DEVICE)."""
    return SentenceTransformerEmbedder(
        settings.embedding_model, settings.models_dir, settings.embed_batch_size, settings.device
    )


def pick_device(device: str, cuda: bool | None = None) -> str:
    """The torch device to embed on: `auto` = the GPU when torch sees one (CUDA), else the CPU; `cuda` without a
    visible GPU is an error that says so (`cuda` given: whether one is visible, for tests)."""
    if cuda is None:
        import torch

        cuda = bool(torch.cuda.is_available())
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if device.startswith("cuda") and not cuda:
        raise RagError(
            f"RAG_DEVICE={device} but torch sees no CUDA GPU here (the CPU build of torch, or no driver): "
            "set RAG_DEVICE=auto or cpu."
        )
    return device


def use_query_threads(threads: int) -> None:
    """Let torch, numpy's BLAS and FAISS's OpenMP use `threads` CPU threads in this process (0: their default, all
    cores). Call it once the index is loaded (the libraries it limits must be loaded).

    One question is a few dozen tokens: a second thread barely speeds it up, while several askers' searches
    each spinning two threads on two cores slowed them tenfold (scripts/bench_load.py, docs/many-readers.md).
    """
    if threads > 0:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(limits=threads)
