"""Article text is untrusted: it is escaped, never rendered; highlights and direction are right."""

from __future__ import annotations

from rag.answer.render import article_html, escape_markdown, snippet_html, title_html
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
