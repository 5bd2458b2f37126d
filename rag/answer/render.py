"""Safe HTML for showing article text: everything from an article is escaped, only our own tags are added."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from rag.text.arabic import detect_language
from rag.types import Article, Chunk, KeyQuote

Span = tuple[int, int]  # character offsets in the article text

ARABIC_FONTS = '"Noto Naskh Arabic", "Noto Sans Arabic", "Amiri", "DejaVu Sans", "Segoe UI", sans-serif'
STYLE = f"""<style>
.rag-text {{ white-space: pre-wrap; line-height: 1.9; font-size: 1.05rem; overflow-wrap: anywhere; }}
.rag-text[lang="ar"] {{ font-family: {ARABIC_FONTS}; text-align: right; }}
.rag-text mark {{ background: #ffe58f; color: inherit; padding: 0 .1em; border-radius: 3px; }}
.rag-text .rag-chunk {{ background: #eef4ff; }}
.rag-meta {{ color: #666; font-size: .85rem; margin-bottom: .4rem; }}
blockquote.rag-quote {{ margin: .3rem 0 .2rem; padding: .4rem .9rem; border-inline-start: 4px solid #f0b400;
  background: #fffbe6; border-radius: 4px; }}
.rag-quote .rag-cite {{ font-weight: 600; color: #8a6d00; white-space: nowrap; }}
</style>"""


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown so an article's title shows as typed in a Streamlit label."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def direction(text: str) -> tuple[str, str]:
    """(dir, lang) attributes for a text: right-to-left Arabic or left-to-right English."""
    return ("rtl", "ar") if detect_language(text) == "ar" else ("ltr", "en")


def _marked(text: str, offset: int, spans: Sequence[Span], chunk: Span | None = None) -> str:
    """Escape text[...] and wrap the spans (article offsets, text starts at `offset`) in <mark>."""
    end = offset + len(text)
    cuts = {offset, end}
    for a, b in [*spans, *([chunk] if chunk else [])]:
        cuts |= {min(max(a, offset), end), min(max(b, offset), end)}
    points = sorted(cuts)
    out = []
    first_chunk_part = True
    for a, b in zip(points, points[1:], strict=False):
        piece = html.escape(text[a - offset : b - offset])
        if any(s <= a and b <= e for s, e in spans):
            piece = f"<mark>{piece}</mark>"
        if chunk and chunk[0] <= a and b <= chunk[1]:
            anchor = ' id="rag-hl"' if first_chunk_part else ""
            first_chunk_part = False
            piece = f'<span class="rag-chunk"{anchor}>{piece}</span>'
        out.append(piece)
    return "".join(out)


def snippet_html(chunk: Chunk, article: Article | None, highlights: Sequence[Span] = ()) -> str:
    """The cited chunk with its title and outlet, highlighted sentences in <mark>, right-to-left when Arabic."""
    dir_, lang = direction(chunk.text)
    title = html.escape(article.title) if article else html.escape(chunk.article_id)
    outlet = f" · {html.escape(article.outlet)}" if article and article.outlet else ""
    body = _marked(chunk.text, chunk.start, highlights)
    return (
        f'{STYLE}<div class="rag-snippet"><div class="rag-meta" dir="auto">{title}{outlet}</div>'
        f'<div class="rag-text" dir="{dir_}" lang="{lang}">{body}</div></div>'
    )


SCROLL_SCRIPT = (
    "<script>const el = document.getElementById('rag-hl'); if (el) el.scrollIntoView({block: 'center'});</script>"
)


def article_html(article: Article, chunk: Chunk, highlights: Sequence[Span] = ()) -> str:
    """The whole article, the cited chunk shaded, its highlighted sentences marked, scrolled into view."""
    dir_, lang = direction(article.text)
    outlet = f" · {html.escape(article.outlet)}" if article.outlet else ""
    body = _marked(article.text, 0, highlights, (chunk.start, chunk.end))
    return (
        f'{STYLE}<div class="rag-article"><div class="rag-meta" dir="auto"><b>{html.escape(article.title)}</b>'
        f'{outlet} · {html.escape(article.id)}</div><div class="rag-text" dir="{dir_}" lang="{lang}">{body}</div></div>'
        f"{SCROLL_SCRIPT}"
    )


def quote_html(quote: KeyQuote, article: Article | None) -> str:
    """A key quote as a blockquote: verbatim, its key sentence highlighted, its [n], the outlet and title."""
    dir_, lang = direction(quote.text)
    source = html.escape(article.title if article else quote.chunk.article_id)
    outlet = f"{html.escape(article.outlet)} · " if article and article.outlet else ""
    return (
        f'{STYLE}<blockquote class="rag-quote"><div class="rag-text" dir="{dir_}" lang="{lang}">'
        f'{_marked(quote.text, quote.start, [quote.focus])} <span class="rag-cite">[{quote.n}]</span></div>'
        f'<div class="rag-meta" dir="auto">— {outlet}{source}</div></blockquote>'
    )


def title_html(article: Article) -> str:
    """The article's title and outlet as a heading, escaped."""
    outlet = f" · {html.escape(article.outlet)}" if article.outlet else ""
    heading = f'<h3 dir="auto" style="margin:0">{html.escape(article.title)}</h3>'
    return f'{heading}<div class="rag-meta">{html.escape(article.id)}{outlet}</div>'
