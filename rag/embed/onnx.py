"""The question encoder on ONNX Runtime: the same e5 vectors as torch for a few short texts, in about half the time.

One question is a few dozen tokens: torch then spends most of its time dispatching a few hundred small operations
(22 ms a question on one thread here), ONNX Runtime runs the same graph in 12 ms with vectors within cosine 0.999999
of torch's (scripts/bench_scale.py, docs/large-archives.md). For batches of passages it is no faster (1.00×,
`make bench-encoder`), so builds stay on torch, where bf16 can be chosen (rag/embed/precision.py).

`rag models install` exports the graph into the model's folder (QUERY_GRAPH) from the torch model itself: the
transformer and e5's mean pooling and normalisation, fed with the token vectors rather than the token ids, so the
250k-row word-embedding table (384 MB in fp32) stays once in memory, in torch's model, and the graph is 82 MB.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

QUERY_GRAPH = "rag_query_encoder.onnx"  # in the sentence-transformers folder of the model
QUERY_GRAPH_FORMAT = 1  # bump when the graph's inputs or outputs change
MARKER = "rag_query_encoder.json"


def export_query_graph(model_dir: Path) -> Path:
    """Write the ONNX graph of the sentence-transformers model in `model_dir` (a BERT-style transformer, mean
    pooling, normalisation) into that folder, written aside then moved in; its path."""
    import torch
    from sentence_transformers import SentenceTransformer

    st: Any = SentenceTransformer(str(model_dir), device="cpu")
    names = [type(m).__name__ for m in st]
    pooling = st[1].get_config_dict() if len(names) > 1 else {}
    if names != ["Transformer", "Pooling", "Normalize"] or pooling.get("pooling_mode") != "mean":
        raise ValueError(f"{model_dir} is not a mean-pooled, normalised transformer ({names}): no question graph.")
    transformer = st[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.transformer(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    example = st.tokenizer(["query: مرحبا", "query: hello world"], padding=True, return_tensors="pt")
    table = transformer.get_input_embeddings().weight
    path, staging = model_dir / QUERY_GRAPH, model_dir / f".{QUERY_GRAPH}.tmp"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes: none that e5's inputs vary
        torch.onnx.export(
            Pooled(),
            (table[example["input_ids"]].detach(), example["attention_mask"]),
            str(staging),
            input_names=["inputs_embeds", "attention_mask"],
            output_names=["vector"],
            dynamic_axes={"inputs_embeds": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "vector": {0: "b"}},
            opset_version=17,
            dynamo=False,
        )
    staging.replace(path)
    (model_dir / MARKER).write_text(json.dumps({"format": QUERY_GRAPH_FORMAT, "torch": torch.__version__}))
    return path


def query_graph(model_dir: Path) -> Path | None:
    """The exported question graph of the model in `model_dir`, None when there is none of this format."""
    try:
        ok = json.loads((model_dir / MARKER).read_text())["format"] == QUERY_GRAPH_FORMAT
    except (OSError, ValueError, KeyError):
        return None
    path = model_dir / QUERY_GRAPH
    return path if ok and path.exists() else None


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def others_running() -> bool:
    """Whether anything besides the calling thread is running on the machine right now (the kernel's count of
    runnable tasks, /proc/loadavg: another asker's process, the answer model writing); False where unknown."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) > 1
    except (OSError, ValueError, IndexError):
        return False


class OnnxQueryEncoder:
    """Normalized vectors of short texts through the exported graph; the token vectors are read from torch's own
    table (`table`, shared memory) and the texts tokenized by the model's tokenizer, truncated at `max_length`.

    `encode(texts, threads)` runs on `threads` threads, or with 0 ("auto", RAG_QUERY_THREADS' default) on every
    core when no other call is running and nothing else runs on the machine (`others_running`: another process's
    search, the answer model writing), else on one thread: a lone question takes half the time on
    two cores (its threads spin, each waiting for the next of its ~150 small operations, and stop when the call
    ends), while questions asked at the same time each keep one core (two spinning threads per question on two
    cores slowed several askers' searches tenfold, scripts/bench_load.py). One session per thread count, each made
    at its first use."""

    def __init__(self, path: Path, table: np.ndarray, tokenizer: Any, max_length: int) -> None:
        self.path = path
        self.table = table
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.sessions: dict[tuple[int, bool], Any] = {}  # (threads, spinning) -> session
        self._lock = threading.Lock()
        self._running = 0  # calls in progress

    def _session_for(self, threads: int, spin: bool) -> Any:
        """The runtime session with `threads` threads (0 = its default); `spin`: its threads wait for work
        spinning, only while a call runs (else they sleep: a spinning pool takes a core from other searches)."""
        with self._lock:
            session = self.sessions.get((threads, spin))
        if session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            options.add_session_config_entry("session.force_spinning_stop", "1")  # no spinning between calls
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            with self._lock:
                session = self.sessions.setdefault((threads, spin), session)
        return session

    def encode(self, texts: Sequence[str], threads: int) -> np.ndarray:
        """Normalized float32 vectors of `texts` (prompts already added), shape (n, dim), on `threads` threads
        (0: every core when alone, one beside another call)."""
        found = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feed = {
            "inputs_embeds": np.ascontiguousarray(self.table[found["input_ids"]], dtype=np.float32),
            "attention_mask": found["attention_mask"].astype(np.int64),
        }
        with self._lock:
            alone = self._running == 0
            self._running += 1
        try:
            many = cores() if threads == 0 and alone and not others_running() else 1
            session = self._session_for(threads or many, spin=threads == 0 and many > 1)
            return np.asarray(session.run(None, feed)[0], dtype=np.float32)
        finally:
            with self._lock:
                self._running -= 1
