"""Chunking: sizes in tokens, Arabic separators, exact offsets."""

from __future__ import annotations

import pytest

from rag.errors import RagError
from rag.ingest.articles import read_articles
from rag.ingest.chunking import chunk_article, make_splitter
from rag.types import Article

from .conftest import DATA, FakeEmbedder


def test_every_chunk_matches_its_offsets() -> None:
    articles, _ = read_articles(DATA)
    splitter = make_splitter(FakeEmbedder().count_tokens, 40, 10)
    for article in articles:
        chunks = chunk_article(article, splitter)
        assert len(chunks) > 1
        for c in chunks:
            assert article.text[c.start : c.end] == c.text
            assert c.id == f"{article.id}:{c.start}-{c.end}"
            assert len(c.text.split()) <= 40
        # together the chunks cover the article, in order
        assert chunks[0].start == 0 and chunks[-1].end == len(article.text)
        assert all(a.start < b.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_arabic_sentence_marks_split_long_lines() -> None:
    text = "؛ ".join(["كلمة أخرى هنا وهناك"] * 30) + "؟ سؤال أخير في النهاية"
    article = Article(id="x", title="t", outlet=None, text=text, sha256="")
    chunks = chunk_article(article, make_splitter(FakeEmbedder().count_tokens, 20, 0))
    assert all(c.text.endswith(("؛", "؟", "النهاية")) for c in chunks)
    assert all(article.text[c.start : c.end] == c.text for c in chunks)


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(RagError, match="RAG_CHUNK_OVERLAP"):
        make_splitter(len, 10, 10)
