"""Reading articles: .txt, .md and saved HTML pages, and .jsonl feeds; furniture removed (furniture.py); metadata
from sidecars, front matter and page heads (metadata.py)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from rag.errors import RagError
from rag.ingest.furniture import clean_text, detect_outlet
from rag.ingest.metadata import MetadataError, clean_fields, front_matter, html_head, json_object, sidecar
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
    `scripts/html_extractors.py`, docs/how-it-works.md). A page too short or too odd for it keeps every
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


ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")  # one article per file; NAME.json beside it is its sidecar
FEED_SUFFIX = ".jsonl"  # one article per line: {"id": …, "text": …, and any metadata field}
_MARKDOWN = (
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE), ""),  # heading marks
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: their alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: their text
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?!\w)"), r"\1"),  # italics
    (re.compile(r"`([^`]+)`"), r"\1"),  # inline code
    (re.compile(r"^\s{0,3}>\s?", re.MULTILINE), ""),  # block quotes
    (re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$", re.MULTILINE), ""),  # rules
)


@dataclass(frozen=True, slots=True)
class Folder:
    """What a data folder holds: its articles, the files or feed lines skipped (and why), notices about metadata
    left out (the article is indexed without it), and where each article came from (id -> file or file:line)."""

    articles: list[Article]
    skipped: list[Skipped]
    notices: list[str]
    sources: dict[str, str]


def markdown_text(text: str) -> str:
    """Markdown's marks removed (headings, emphasis, links and images keep their words)."""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return text


def parse_article(article_id: str, data: bytes, given: dict[str, str] | None = None) -> Article:
    """Decode and clean one file's bytes; raise RagError when it holds no article. `given`: metadata from a
    sidecar, preferred over what the file itself declares."""
    return read_article(article_id, data, article_id, given)[0]


def read_article(
    article_id: str,
    data: bytes,
    where: str,
    given: dict[str, str] | None = None,
    *,
    markdown: bool = False,
    hashed: bytes | None = None,
) -> tuple[Article, list[str]]:
    """One article and notices about its metadata (naming `where`). Metadata, field by field: `given` (a
    sidecar's or a feed line's), then the front matter of a text file or the head of an HTML page, then the
    guesses (title: the page's <h1>, else the first real line; outlet: named in the page or text). `hashed`: the
    bytes its checksum covers (default `data`)."""
    if not data.strip():
        raise RagError("the file is empty")
    raw = decode(data)
    page = raw
    declared: dict[str, str] = {}
    notices: list[str] = []
    heading = ""
    if _HTML.match(raw):
        declared, notices = clean_fields(html_head(raw), where)
        parsed = _parse(raw)
        heading = " ".join("".join(parsed.heading).split())  # the page's <h1>: a better guess than its first line
        page = parsed.text()  # the outlet is named in menus and footers, outside the article's body
        raw = _article_of(raw, parsed)
    else:
        matter, raw, problem = front_matter(raw)
        if problem:
            notices.append(f"{where}: {problem}")
        declared, notices_fm = clean_fields(matter, f"{where} front matter")
        notices += notices_fm
        page = raw
        if markdown:
            raw = markdown_text(raw)
    fields = declared | (given or {})
    text = clean_text(raw)
    if not text.strip():
        raise RagError("no article text left after removing page furniture")
    return (
        Article(
            id=article_id,
            title=fields.get("title") or pick_title(heading or text),
            outlet=fields.get("outlet") or detect_outlet(page),
            text=text,
            sha256=hashlib.sha256(data if hashed is None else hashed).hexdigest(),
            published=fields.get("published"),
            url=fields.get("url"),
            language=fields.get("language"),
            author=fields.get("author"),
        ),
        notices,
    )


def _checked_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_ARTICLE_BYTES:
        raise RagError(
            f"{size / 2**20:.1f} MB, over the {MAX_ARTICLE_BYTES // 2**20} MB limit for one article; "
            f"split it into one file per article, or one article per line of a {FEED_SUFFIX} feed"
        )


def data_files(data_dir: Path) -> list[Path]:
    """The files of `data_dir` a build reads: articles, their sidecars and feeds, by name."""
    suffixes = {*ARTICLE_SUFFIXES, FEED_SUFFIX, ".json"}
    return sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def read_articles(data_dir: Path) -> tuple[list[Article], list[Skipped]]:
    """The articles of `data_dir` and the files skipped (see read_folder)."""
    folder = read_folder(data_dir)
    return folder.articles, folder.skipped


def read_folder(data_dir: Path) -> Folder:
    """Every article of `data_dir`: .txt, .md, .html/.htm files (the file name without its suffix is the id) and
    .jsonl feeds (a line per article, its "id" the id). Unreadable files and feed lines are skipped with their
    reason; an id used twice is skipped the second time."""
    if not data_dir.is_dir():
        raise RagError(
            f"Data folder {data_dir} does not exist: create it and put articles in it (.txt, .md, .html or "
            f"{FEED_SUFFIX}), or pass --data DIR."
        )
    folder = Folder([], [], [], {})
    files = data_files(data_dir)
    stems = {p.stem for p in files if p.suffix.lower() in ARTICLE_SUFFIXES}
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".json":
            if path.stem not in stems:
                folder.notices.append(f"{path}: a sidecar with no article {path.stem}.txt, .md or .html; ignored")
            continue
        if suffix == FEED_SUFFIX:
            _read_feed(path, folder)
            continue
        try:
            _checked_size(path)
            data = path.read_bytes()
            given, hashed = _sidecar_of(path, folder.notices)
            article, notices = read_article(
                path.stem, data, str(path), given, markdown=suffix == ".md", hashed=data + hashed if hashed else None
            )
            folder.notices.extend(notices)
            _add(folder, article, str(path))
        except RagError as exc:
            folder.skipped.append(Skipped(path=str(path), reason=str(exc)))
        except OSError as exc:
            folder.skipped.append(Skipped(path=str(path), reason=f"cannot be read ({exc.strerror})"))
    return folder


def _sidecar_of(path: Path, notices: list[str]) -> tuple[dict[str, str], bytes]:
    """The metadata of `path`'s sidecar (NAME.json) and its bytes; a broken sidecar is a notice, not a skip."""
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}, b""
    data = side.read_bytes()
    try:
        fields, problems = clean_fields(sidecar(data), str(side))
    except MetadataError as exc:
        notices.append(f"{side}: {exc}; {path.name} is indexed without it")
        return {}, b"\0" + data
    notices.extend(problems)
    return fields, b"\0" + data


def _add(folder: Folder, article: Article, where: str) -> None:
    if article.id in folder.sources:
        raise RagError(f"the id {article.id!r} is already taken by {folder.sources[article.id]}: rename one of them")
    folder.articles.append(article)
    folder.sources[article.id] = where


def _read_feed(path: Path, folder: Folder) -> None:
    """A .jsonl feed: each line an article; a bad line is skipped with its line number."""
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        folder.skipped.append(Skipped(path=str(path), reason=f"cannot be read ({exc.strerror})"))
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            article, notices = _feed_article(line, where)
            folder.notices.extend(notices)
            _add(folder, article, where)
        except RagError as exc:
            folder.skipped.append(Skipped(path=where, reason=str(exc)))


def _feed_article(line: bytes, where: str) -> tuple[Article, list[str]]:
    if len(line) > MAX_ARTICLE_BYTES:
        raise RagError(f"a line of {len(line) / 2**20:.1f} MB, over the {MAX_ARTICLE_BYTES // 2**20} MB limit")
    try:
        record = json_object(
            line,
            'not a JSON object on one line ({error}); write {{"id": "…", "text": "…"}}',
            'not a JSON object; write {"id": "…", "text": "…"}',
        )
    except MetadataError as exc:
        raise RagError(str(exc)) from None
    article_id, text = record.pop("id", None), record.pop("text", None)
    if not isinstance(article_id, str) or not article_id.strip() or len(article_id) > 200 or "\n" in article_id:
        raise RagError(f'"id" must be a non-empty one-line text of at most 200 characters, got {article_id!r}')
    if not isinstance(text, str) or not text.strip():
        raise RagError(f'article {article_id!r} has no "text"')
    given, notices = clean_fields(record, f"{where} ({article_id})")
    article, more = read_article(article_id.strip(), text.encode("utf-8"), where, given, hashed=line)
    return article, notices + more
