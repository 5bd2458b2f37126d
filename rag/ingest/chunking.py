"""Chunking: token-sized, Arabic-aware splits that keep their character offsets."""

from __future__ import annotations

from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.errors import RagError
from rag.types import Article, Chunk

# Paragraphs, lines, then sentence ends (Latin and Arabic), clause marks, words, characters.
SEPARATORS = ["\n\n", "\n", ". ", "؟", "?", "!", "؛", ";", "،", ",", " ", ""]

TokenCounter = Callable[[str], int]


def make_splitter(count_tokens: TokenCounter, chunk_tokens: int, overlap: int) -> RecursiveCharacterTextSplitter:
    """A recursive splitter whose sizes are counted in the embedding model's tokens."""
    if overlap >= chunk_tokens:
        raise RagError(
            f"Chunk overlap {overlap} must be smaller than the chunk size {chunk_tokens}: lower RAG_CHUNK_OVERLAP."
        )
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        keep_separator="end",
        chunk_size=chunk_tokens,
        chunk_overlap=overlap,
        length_function=count_tokens,
        strip_whitespace=True,
    )


def chunk_article(article: Article, splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Split one article; every chunk satisfies `article.text[start:end] == chunk.text`."""
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.split_text(article.text):
        start = article.text.find(piece, cursor)
        if start < 0:  # cannot happen with strip-only splitting; guard the offset contract anyway
            raise RagError(f"Chunk offsets lost in article {article.id}: please report this article.")
        end = start + len(piece)
        chunks.append(Chunk(id=f"{article.id}:{start}-{end}", article_id=article.id, text=piece, start=start, end=end))
        cursor = start + 1
    return chunks


def chunk_articles(articles: list[Article], splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Chunks of every article, in article order."""
    return [c for a in articles for c in chunk_article(a, splitter)]
