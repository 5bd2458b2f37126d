"""Reading articles: UTF-8 .txt files or saved HTML pages, furniture removed (furniture.py), title and outlet kept."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from rag.errors import RagError
from rag.ingest.furniture import clean_text, detect_outlet
from rag.types import Article, Skipped


def pick_title(text: str, limit: int = 120) -> str:
    """The first real line (at least four words), cut at a word boundary."""
    for line in text.split("\n"):
        if len(line.split()) >= 4:
            if len(line) <= limit:
                return line
            return line[:limit].rsplit(" ", 1)[0] + "…"
    return text[:limit]


MAX_ARTICLE_BYTES = 10 * 1024 * 1024  # a news article is far smaller; a bigger file is a dump to split first

_HTML = re.compile(r"^\s*(<!doctype html|<html\b|<head\b|<body\b)", re.IGNORECASE)
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})  # no article text inside
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "title", "article", "section", "blockquote",
     "header", "footer", "figure", "figcaption", "ul", "ol", "table", "hr", "main", "aside", "nav", "pre"}
)  # fmt: skip


class _PageText(HTMLParser):
    """The text of a page, a line per block element (the standard library's tolerant parser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skipping: list[str] = []  # open elements whose text is not the article's
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._skipping:  # the page's title, not an <svg> icon's
            self._in_title = True
        elif tag in _SKIPPED_TAGS:
            self._skipping.append(tag)
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:  # <br/>, <hr/>
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        (self.title if self._in_title else self.parts).append(data)


def decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM) or UTF-16 with a BOM; RagError for binary or undecodable bytes."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise RagError(f"broken UTF-16 (bad bytes at offset {exc.start}); save it as UTF-8") from exc
    if b"\x00" in data[:8192]:
        raise RagError("binary data (NUL bytes), not a text article")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RagError(f"not valid UTF-8 (bad byte at offset {exc.start}); save it as UTF-8") from exc


def html_to_text(raw: str) -> str:
    """The text of an HTML page saved as .txt: the title first, then the body, a line per block element.

    Scripts, styles, comments and the head are dropped; entities are decoded. The standard library's parser
    copes with what regular expressions do not: `>` inside attribute values, unclosed comments and tags.
    """
    opened = raw.rfind("<!--")
    if opened != -1 and "-->" not in raw[opened:]:
        raw = raw[:opened]  # a comment never closed runs to the end of the page, as in a browser
    page = _PageText()
    page.feed(raw)
    page.close()
    lines = ["".join(page.title), *"".join(page.parts).split("\n")]
    return "\n".join(text for line in lines if (text := " ".join(line.split())))


def parse_article(article_id: str, data: bytes) -> Article:
    """Decode and clean one file's bytes; raise RagError when it holds no article."""
    if not data.strip():
        raise RagError("the file is empty")
    raw = decode(data)
    if _HTML.match(raw):
        raw = html_to_text(raw)
    text = clean_text(raw)
    if not text.strip():
        raise RagError("no article text left after removing page furniture")
    return Article(
        id=article_id,
        title=pick_title(text),
        outlet=detect_outlet(raw),
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def read_articles(data_dir: Path) -> tuple[list[Article], list[Skipped]]:
    """Read every .txt file of `data_dir`; unreadable ones are skipped with their reason."""
    if not data_dir.is_dir():
        raise RagError(
            f"Data folder {data_dir} does not exist: create it and put .txt articles in it, or pass --data DIR."
        )
    articles: list[Article] = []
    skipped: list[Skipped] = []
    for path in sorted(data_dir.glob("*.txt")):
        try:
            size = path.stat().st_size
            if size > MAX_ARTICLE_BYTES:
                raise RagError(
                    f"{size / 2**20:.1f} MB, over the {MAX_ARTICLE_BYTES // 2**20} MB limit for one article; "
                    "split it into one file per article"
                )
            articles.append(parse_article(path.stem, path.read_bytes()))
        except RagError as exc:
            skipped.append(Skipped(path=str(path), reason=str(exc)))
        except OSError as exc:
            skipped.append(Skipped(path=str(path), reason=f"cannot be read ({exc.strerror})"))
    return articles, skipped
