"""Retrieval with the real model and a real index on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.retrieve.retriever import load_retriever


def test_evidence_in_top_5_for_every_answerable_seed_question(
    real_index: Path, real_settings: Settings, real_embedder, seed_questions
) -> None:  # type: ignore[no-untyped-def]
    retriever = load_retriever(real_settings, real_embedder)
    misses = []
    for q in seed_questions:
        if not q["answerable"]:
            continue
        hits = retriever.search(q["question"], 5)
        if not any(e in h.chunk.text for h in hits for e in q["evidence"]):
            misses.append(q["id"])
    assert not misses, f"evidence not in the top 5 for {misses}"


def test_focused_passages_are_sentences_of_the_chunk(real_index: Path, real_settings: Settings, real_embedder) -> None:  # type: ignore[no-untyped-def]
    retriever = load_retriever(real_settings, real_embedder)
    question = "What did Mao Ning say about dual-use exports?"
    query = retriever.query(question)
    hits = retriever.search(query, 3)
    focused, spans = retriever.read(query, hits, 2)
    assert "الاستخدام المزدوج" in focused[0]
    for hit, text in zip(hits, focused, strict=True):
        assert all(part.strip() in hit.chunk.text for part in text.split(" … "))
    for hit, hit_spans in zip(hits, spans, strict=True):
        article = retriever.index.articles[hit.chunk.article_id].text
        assert all(hit.chunk.start <= a < b <= hit.chunk.end for a, b in hit_spans)
        assert all(article[a:b] in hit.chunk.text for a, b in hit_spans)
    assert retriever.read(query, hits, 0) == ([h.chunk.text for h in hits], [() for _ in hits])


def test_scores_are_fused_and_ordered(real_index: Path, real_settings: Settings, real_embedder) -> None:  # type: ignore[no-untyped-def]
    retriever = load_retriever(real_settings, real_embedder)
    hits = retriever.search("ماذا قالت ماو نينغ؟", 5)
    scores = np.array([h.score for h in hits])
    assert np.all(scores <= 1.0001) and np.all(scores > 0) and np.all(np.diff(scores) <= 1e-6)
    assert all(0 < h.dense <= 1.0001 for h in hits)  # the dense part is a cosine mix
    assert hits[0].lexical > 0.5  # "ماو نينغ" appears literally in the top passage
    w = real_settings.lexical_weight
    assert all(h.score >= w * h.lexical - 1e-6 for h in hits)


def test_english_question_is_translated_for_the_lexical_leg(
    real_index: Path, real_settings: Settings, real_embedder, llm_server: str
) -> None:  # type: ignore[no-untyped-def]
    retriever = load_retriever(real_settings, real_embedder)
    question = "What did Mao Ning say about dual-use exports?"
    query = retriever.query(question)
    rendering = query.rendering
    assert rendering and any("\u0621" <= ch <= "\u064a" for ch in rendering)
    hits = retriever.search(query, 3)
    assert "الاستخدام المزدوج" in hits[0].chunk.text and hits[0].lexical > 0
