"""Article text is untrusted: it is escaped, never rendered; highlights and direction are right."""

from __future__ import annotations

from rag.answer.render import (
    also_reported_by,
    article_html,
    escape_markdown,
    safe_url,
    snippet_html,
    source_html,
    source_text,
    title_html,
)
from rag.types import Article, Chunk

EVIL = 'خبر <img src=x onerror=alert(1)> و<script>alert(2)</script> **عريض** [رابط](http://x) "اقتباس"'


def _article(text: str = EVIL) -> Article:
    return Article(id="evil", title="<b>عنوان</b> خبيث", outlet="<i>BBC</i>", text=text, sha256="")


def test_snippet_escapes_html_and_keeps_markdown_literal() -> None:
    a = _article()
    chunk = Chunk(id=f"evil:0-{len(a.text)}", article_id="evil", text=a.text, start=0, end=len(a.text))
    out = snippet_html(chunk, a)
    assert "<img" not in out and "<script>alert" not in out and "<b>عنوان" not in out and "<i>BBC" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in out
    assert "**عريض**" in out and "[رابط](http://x)" in out  # Markdown stays text (no Markdown renderer runs)
    assert 'dir="rtl" lang="ar"' in out


def test_article_marks_chunk_and_highlights_in_place() -> None:
    text = "الجملة الأولى هنا. الجملة الثانية هناك. الجملة الثالثة أخيرا."
    a = _article(text)
    start = text.index("الجملة الثانية")
    chunk = Chunk(id="c", article_id="evil", text=text[start:], start=start, end=len(text))
    hl = (start, start + len("الجملة الثانية هناك."))
    out = article_html(a, chunk, [hl])
    assert out.count('id="rag-hl"') == 1
    assert '<span class="rag-chunk" id="rag-hl"><mark>الجملة الثانية هناك.</mark></span>' in out
    assert out.index("الجملة الأولى") < out.index('id="rag-hl"')  # the text before the chunk is not shaded
    assert "scrollIntoView" in out


def test_english_text_is_left_to_right() -> None:
    a = Article(id="en", title="Title", outlet=None, text="An English article about trade.", sha256="")
    chunk = Chunk(id="c", article_id="en", text=a.text, start=0, end=len(a.text))
    assert 'dir="ltr" lang="en"' in snippet_html(chunk, a)
    assert "&lt;b&gt;" in title_html(_article())


def test_markdown_is_escaped_for_labels() -> None:
    out = escape_markdown("[1] **bold** [x](http://e) _i_ :red[t] <b>")
    assert r"\*\*bold\*\*" in out and r"\[x\]\(http" in out and r"\_i\_" in out
    assert r"\:red\[t\]" in out and r"\<b\>" in out


def _dated(**fields: str | None) -> Article:
    base = {"outlet": "إذاعة الساحل", "published": "2024-07-01T09:30:00+03:00", "url": "https://example.net/a?x=1&y=2"}
    return Article(id="d", title="عنوان", text="نص.", sha256="", **{**base, **fields})  # type: ignore[arg-type]


def test_sources_show_outlet_date_link_and_who_else_reported() -> None:
    other = Article(id="o", title="عنوان آخر", outlet="<b>BBC</b>", text="نص.", sha256="")
    same = Article(id="s", title="ثالث", outlet="إذاعة الساحل", text="نص.", sha256="")
    untitled = Article(id="u", title="بلا منفذ", outlet=None, text="نص.", sha256="")
    articles = {"o": other, "s": same, "u": untitled}
    a = _dated()
    chunk = Chunk(id="d:0-3", article_id="d", text="نص.", start=0, end=3)
    out = snippet_html(chunk, a, (), also_reported_by(a, ("o", "s", "u", "o"), articles))
    assert '<time datetime="2024-07-01T09:30:00+03:00" dir="ltr">2024-07-01</time>' in out
    assert 'href="https://example.net/a?x=1&amp;y=2" target="_blank" rel="noopener noreferrer">original ↗' in out
    assert "also reported by &lt;b&gt;BBC&lt;/b&gt;, بلا منفذ</span>" in out  # own outlet left out, each once
    assert source_text(a, also_reported_by(a, ("o",), articles)) == (
        "إذاعة الساحل · 2024-07-01T09:30:00+03:00 · https://example.net/a?x=1&y=2 · also reported by <b>BBC</b>"
    )
    assert also_reported_by(a, ("s",), articles) == [] and source_text(_article()) == "<i>BBC</i>"
    title = title_html(_dated(author="سلمى", language="ar"))
    assert "2024-07-01" in title and "by سلمى" in title and "language ar" in title and "original ↗" in title
    assert "2024-07-01" in article_html(a, chunk) and "original ↗" in article_html(a, chunk)


def test_only_web_links_are_clickable() -> None:
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//example.org/x", "example.org"):
        a = _dated(url=bad)
        assert safe_url(bad) is None and "href" not in source_html(a) and bad not in source_text(a)
    assert safe_url(" HTTPS://example.org/x ") == "HTTPS://example.org/x"
    assert source_html(_dated(outlet=None, published=None, url=None)) == ""
