"""The question encoder on ONNX Runtime (rag/embed/onnx.py): exported by `rag models install`, used for short calls,
the same vectors as torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.embed.embedder import SHORT_CALL, SentenceTransformerEmbedder
from rag.embed.onnx import MARKER, QUERY_GRAPH, OnnxQueryEncoder, export_query_graph, query_graph

TEXTS = [
    "ا",
    "What did Mao Ning say about dual-use exports?",
    "ماذا قالت المتحدثة باسم الخارجية الصينية عن صادرات المواد ذات الاستخدام المزدوج؟",
    "قالت " * 700,  # past the model's 512 tokens: truncated the same way
]


def _torch_only(embedder: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
    other = embedder.with_precision("fp32")
    other.onnx = None
    return other


def test_a_graph_is_found_only_with_its_marker(tmp_path: Path) -> None:
    assert query_graph(tmp_path) is None
    (tmp_path / QUERY_GRAPH).write_bytes(b"graph")
    assert query_graph(tmp_path) is None  # no marker: an export that did not finish
    (tmp_path / MARKER).write_text(json.dumps({"format": 0}))
    assert query_graph(tmp_path) is None  # an older format: exported again by `rag models install`
    (tmp_path / MARKER).write_text(json.dumps({"format": 1}))
    assert query_graph(tmp_path) == tmp_path / QUERY_GRAPH


def test_models_install_exported_the_question_graph_and_questions_use_it(real_embedder) -> None:  # type: ignore[no-untyped-def]
    assert real_embedder.onnx is not None, "no question graph: run `rag models install`"
    torch_only = _torch_only(real_embedder)
    for texts in ([TEXTS[1]], TEXTS, TEXTS[:2] * (SHORT_CALL // 2)):
        fast, slow = real_embedder.embed_queries(texts), torch_only.embed_queries(texts)
        assert fast.shape == slow.shape == (len(texts), real_embedder.dim)
        assert float(np.min(np.sum(fast * slow, axis=1))) >= 0.99999
    passages = real_embedder.embed_documents(TEXTS)  # a short call of passages: the same graph, "passage: " prompt
    assert float(np.min(np.sum(passages * torch_only.embed_documents(TEXTS), axis=1))) >= 0.99999
    assert float(np.min(np.sum(passages * real_embedder.embed_queries(TEXTS), axis=1))) < 0.999  # the prompts differ


def test_questions_do_not_go_through_torch(real_embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("torch was asked to embed a question")

    monkeypatch.setattr(real_embedder.model, "encode", refuse)
    assert real_embedder.embed_query("Who met in Fujian?").shape == (real_embedder.dim,)
    with pytest.raises(AssertionError, match="torch was asked"):
        real_embedder.embed_documents(["passage"] * (SHORT_CALL + 1))  # a bulk call goes to torch


def test_the_export_writes_a_graph_and_its_marker(real_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model_dir = tmp_path / "e5"
    model_dir.mkdir()
    for f in Path(real_embedder.path).iterdir():  # the model's files, linked (read only)
        if f.name not in (QUERY_GRAPH, MARKER):
            (model_dir / f.name).symlink_to(f)
    path = export_query_graph(model_dir)
    assert query_graph(model_dir) == path and path.stat().st_size > 10_000_000
    assert not list(model_dir.glob(".*.tmp"))
    assert real_embedder.onnx is not None
    mine = OnnxQueryEncoder(path, real_embedder.onnx.table, real_embedder.model.tokenizer, 512)
    texts = ["query: " + t for t in TEXTS[:3]]
    assert np.allclose(mine.encode(texts, 1), real_embedder.onnx.encode(texts, 1), atol=1e-5)
