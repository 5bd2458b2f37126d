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


def test_auto_threads_give_a_lone_question_every_core_and_overlapping_ones_one(  # type: ignore[no-untyped-def]
    real_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.embed import onnx
    from rag.embed.onnx import cores

    assert isinstance(onnx.others_running(), bool)  # read from /proc/loadavg (what runs there varies: not asserted)
    encoder = OnnxQueryEncoder(
        real_embedder.onnx.path, real_embedder.onnx.table, real_embedder.model.tokenizer, 512
    )
    texts = ["query: " + t for t in TEXTS[:3]]
    monkeypatch.setattr(onnx, "others_running", lambda: False)  # nothing else runs on the machine
    alone = encoder.encode(texts, 0)
    assert set(encoder.sessions) == {(cores(), cores() > 1)}  # every core, spinning only within the call
    encoder._running = 1  # another question of this process is being embedded: this one gets one thread
    beside = encoder.encode(texts, 0)
    assert encoder._running == 1 and set(encoder.sessions) == {(cores(), cores() > 1), (1, False)}
    encoder._running = 0
    monkeypatch.setattr(onnx, "others_running", lambda: True)  # another process runs (an asker, the answer model)
    encoder.sessions.pop((1, False))
    busy = encoder.encode(texts, 0)
    assert (1, False) in encoder.sessions
    fixed = encoder.encode(texts, 3)  # RAG_QUERY_THREADS=3: three, alone or not, never spinning
    assert (3, False) in encoder.sessions and len(encoder.sessions) == 2 + (cores() > 1)
    for other in (beside, busy, fixed):
        assert float(np.min(np.sum(alone * other, axis=1))) >= 0.99999


def test_query_threads_auto_keeps_torch_on_one_thread_and_questions_on_the_encoder(  # type: ignore[no-untyped-def]
    real_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import rag.embed.embedder as embedder_module
    from rag.embed.embedder import use_query_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(embedder_module, "_QUERY_THREADS", None)  # put back after: a build follows torch's threads
    asked: list[int] = []
    assert real_embedder.onnx is not None
    monkeypatch.setattr(real_embedder.onnx, "encode", lambda texts, threads: asked.append(threads) or np.zeros((1, 1)))
    try:
        use_query_threads(0)
        assert torch.get_num_threads() == 1
        real_embedder.embed_queries(["Who met in Fujian?"])
        use_query_threads(2)
        assert torch.get_num_threads() == 2
        real_embedder.embed_queries(["Who met in Fujian?"])
    finally:
        torch.set_num_threads(before)
    assert asked == [0, 2]
