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

_MIN_BODY_WORDS = 20  # fewer words extracted from a page: not its article, keep the whole page's text
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
        self.heading: list[str] = []  # the first <h1>'s text
        self._skipping: list[str] = []  # open elements whose text is not the article's
        self._in_title = False
        self._in_h1 = False
        self._h1_seen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and not self._skipping:  # the page's title, not an <svg> icon's
            self._in_title = True
        elif tag in _SKIPPED_TAGS:
            self._skipping.append(tag)
        elif tag == "h1" and not self._h1_seen:
            self._in_h1 = self._h1_seen = True
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:  # <br/>, <hr/>
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "h1":
            self._in_h1 = False
        elif self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        (self.title if self._in_title else self.parts).append(data)
        if self._in_h1:
            self.heading.append(data)

    def text(self) -> str:
        """The title, then a line per block element."""
        lines = ["".join(self.title), *"".join(self.parts).split("\n")]
        return "\n".join(text for line in lines if (text := " ".join(line.split())))


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


def _parse(raw: str) -> _PageText:
    opened = raw.rfind("<!--")
    if opened != -1 and "-->" not in raw[opened:]:
        raw = raw[:opened]  # a comment never closed runs to the end of the page, as in a browser
    page = _PageText()
    page.feed(raw)
    page.close()
    return page


def page_text(raw: str) -> str:
    """Every text of an HTML page, the title first, a line per block element: the standard library's parser.

    Scripts, styles, comments and the head are dropped; entities are decoded; `>` inside attribute values,
    unclosed comments and tags are coped with. Menus, footers and link lists stay: see `html_to_text`.
    """
    return _parse(raw).text()


def html_to_text(raw: str) -> str:
    """The article in an HTML page saved as .txt: its heading, then its paragraphs.

    `trafilatura` (a maintained extractor) finds the article's body and leaves out menus, cookie notices,
    link lists, "most read" boxes, comments and footers (measured on saved news pages, tests/fixtures/pages:
    `scripts/html_extractors.py`, README "How it works"). A page too short or too odd for it keeps every
    text of the page (`page_text`).
    """
    return _article_of(raw, _parse(raw))


def _article_of(raw: str, page: _PageText) -> str:
    import trafilatura

    try:
        body = trafilatura.extract(raw, include_comments=False, include_tables=True, with_metadata=False) or ""
    except Exception:  # noqa: BLE001 - the extractor's failure is not the reader's: keep the whole page
        body = ""
    if len(body.split()) < _MIN_BODY_WORDS:
        return page.text()
    lines = [text for line in body.split("\n") if (text := " ".join(line.split()))]
    heading = " ".join("".join(page.heading).split()) or " ".join("".join(page.title).split())
    if heading and not any(line.startswith(heading) or heading.startswith(line) for line in lines[:3]):
        lines.insert(0, heading)
    return "\n".join(lines)


def parse_article(article_id: str, data: bytes) -> Article:
    """Decode and clean one file's bytes; raise RagError when it holds no article."""
    if not data.strip():
        raise RagError("the file is empty")
    raw = decode(data)
    page = raw
    if _HTML.match(raw):
        parsed = _parse(raw)
        page = parsed.text()  # the outlet is named in menus and footers, outside the article's body
        raw = _article_of(raw, parsed)
    text = clean_text(raw)
    if not text.strip():
        raise RagError("no article text left after removing page furniture")
    return Article(
        id=article_id,
        title=pick_title(text),
        outlet=detect_outlet(page),
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
