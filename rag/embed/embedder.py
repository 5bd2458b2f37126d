"""Embeddings: multilingual-e5 through sentence-transformers, with its query/passage prompts."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.config import DEFAULT_EMBEDDING_MODEL, Settings
from rag.embed.onnx import OnnxQueryEncoder, query_graph
from rag.embed.precision import PrecisionChoice, choose, combined, cpu_bf16
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


SHORT_CALL = 32  # calls of up to this many texts (questions, a claim's clauses) are latency-bound


class SentenceTransformerEmbedder:
    """A sentence-transformers model with e5's `query: ` / `passage: ` prompts.

    Passages in bulk (a build) go through torch in the precision `precision` asks for (auto, fp32 or bf16:
    rag/embed/precision.py), chosen at the first such call. Short calls (questions; up to SHORT_CALL texts) are
    embedded in fp32 (bf16 only when forced), through ONNX Runtime when `rag models install` exported the model's
    question graph (rag/embed/onnx.py: the same vectors in half the time), else through torch."""

    def __init__(
        self, name: str, models_dir: Path, batch_size: int = 16, device: str = "cpu", precision: str = "auto"
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.setting = precision
        self.choice: PrecisionChoice | None = None  # made at the first bulk embed_documents (or choose_precision)
        self.used: frozenset[str] = frozenset()  # the precisions passages were embedded in
        self.path = resolve_model_path(name, models_dir)
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.model = SentenceTransformer(self.path, device=self.device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self._has_prompts = "query" in self.model.prompts
        graph = query_graph(Path(self.path)) if self.device == "cpu" and Path(self.path).is_dir() else None
        self.onnx: OnnxQueryEncoder | None = None
        if graph is not None:
            transformer: Any = self.model[0]
            table = transformer.auto_model.get_input_embeddings().weight.detach().numpy()  # shared, not copied
            self.onnx = OnnxQueryEncoder(graph, table, self.model.tokenizer, int(self.model.max_seq_length or 512))

    def _encode(
        self, texts: Sequence[str], prompt: str, progress: bool, bf16: bool = False, onnx: bool = True
    ) -> np.ndarray:
        """Vectors through ONNX Runtime for a short fp32 call (unless `onnx` is False), else through torch."""
        import torch

        if onnx and not bf16 and self.onnx is not None and len(texts) <= SHORT_CALL:
            prefix = (self.model.prompts.get(prompt) or "") if self._has_prompts else ""
            threads = torch.get_num_threads() if _QUERY_THREADS is None else _QUERY_THREADS
            return self.onnx.encode([prefix + t for t in texts], threads)
        with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            vecs = self.model.encode(
                list(texts),
                prompt_name=prompt if self._has_prompts else None,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.asarray(vecs, dtype=np.float32)

    def choose_precision(self, native: str | None = None) -> PrecisionChoice:
        """The precision passages are embedded in (decided once; the probe runs here under `auto` on a CPU with
        native bf16, `native` naming it; found from this CPU when not given)."""
        if self.choice is None:
            if native is None and self.setting == "auto" and self.device == "cpu":
                native = cpu_bf16()

            def torch_encode(texts: Sequence[str], bf16: bool) -> np.ndarray:  # the probe's texts are a short call
                return self._encode(texts, "passage", False, bf16, onnx=False)

            self.choice = choose(self.setting, self.device, native, torch_encode)
        return self.choice

    def with_precision(self, setting: str) -> SentenceTransformerEmbedder:
        """The same loaded model under another precision setting (auto, fp32 or bf16), chosen anew."""
        other = copy.copy(self)
        other.setting, other.choice, other.used = setting, None, frozenset()
        return other

    @property
    def precision(self) -> str:
        """The precisions of the passages embedded so far: fp32, bf16, bf16+fp32 ("" before any)."""
        return combined(*self.used) if self.used else ""

    def embed_documents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Normalized float32 vectors of passages, shape (n, dim): a short call in fp32 (bf16 only when forced),
        more in the chosen precision."""
        if len(texts) <= SHORT_CALL and self.setting != "bf16":
            precision = "fp32"
        else:
            precision = self.choose_precision().precision
        self.used |= {precision}
        return self._encode(texts, "passage", progress, precision == "bf16")

    def embed_query(self, text: str) -> np.ndarray:
        """Normalized float32 vector of a question, shape (dim,)."""
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors of questions in one batch, shape (n, dim): bf16 only when forced
        (RAG_EMBED_PRECISION=bf16); under `auto` a question is a few dozen tokens, which bf16 does not speed up."""
        return self._encode(texts, "query", False, self.setting == "bf16")

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in `text` (no special tokens)."""
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def embedder_for(settings: Settings) -> SentenceTransformerEmbedder:
    """The embedding model the settings name (RAG_EMBEDDING_MODEL, RAG_MODELS_DIR, RAG_EMBED_BATCH_SIZE,
    RAG_DEVICE, RAG_EMBED_PRECISION)."""
    return SentenceTransformerEmbedder(
        settings.embedding_model, settings.models_dir, settings.embed_batch_size, settings.device,
        settings.embed_precision,
    )  # fmt: skip


def precision_of(embedder: Embedder) -> str:
    """The precision of the passages `embedder` embedded so far ("" before any; an embedder that does not say,
    such as a test's, embeds in fp32)."""
    used = getattr(embedder, "precision", None)
    return used if isinstance(used, str) else "fp32"


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


_QUERY_THREADS: int | None = None  # RAG_QUERY_THREADS once `use_query_threads` ran; None: follow torch (a build)


def use_query_threads(threads: int) -> None:
    """Answer questions on `threads` CPU threads in this process, or with 0 ("auto") a question embedded while no
    other is on every core and one beside another (rag/embed/onnx.py's OnnxQueryEncoder); torch, numpy's BLAS and
    FAISS's OpenMP get `threads`, one under auto. Call it once the index is loaded (the libraries it limits must be
    loaded).

    A lone question takes half the time on two cores (ONNX Runtime's threads spin only while it runs), while
    several askers' searches each spinning two threads on two cores slowed them tenfold (scripts/bench_load.py,
    docs/many-readers.md): hence one thread each when they overlap.
    """
    global _QUERY_THREADS
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(max(threads, 1))
    threadpool_limits(limits=max(threads, 1))
    _QUERY_THREADS = threads
