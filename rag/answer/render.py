"""Safe HTML for showing article text: everything from an article is escaped, only our own tags are added."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

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
blockquote.rag-closest {{ border-inline-start: 4px dashed #9e9e9e; background: #f5f5f5; }}
.rag-closest .rag-text mark {{ background: none; text-decoration: underline dotted #9e9e9e; }}
.rag-closest .rag-cite {{ color: #666; }}
blockquote.rag-for {{ border-inline-start: 4px solid #2e7d32; background: #edf7ee; }}
blockquote.rag-against {{ border-inline-start: 4px solid #c62828; background: #fdecea; }}
.rag-note {{ color: #8a1c1c; font-size: .85rem; }}
.rag-new {{ color: #fff; background: #c62828; border-radius: 8px; padding: 0 .45em; font-size: .8rem; }}
</style>"""


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def isolated(text: str) -> str:
    """Text kept left to right inside a line of either direction (a date in an Arabic label: 2024-06-30 would
    otherwise show as 30-06-2024), with Unicode's isolate marks, for labels that take no HTML."""
    return f"\u2066{text}\u2069"


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


def safe_url(url: str | None) -> str | None:
    """The link to an original when it is a web address (http or https); None for anything else (a
    `javascript:` link declared in a feed must never become clickable)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def also_reported_by(article: Article | None, also: Sequence[str], articles: Mapping[str, Article]) -> list[str]:
    """The outlets (or, for an article of no known outlet, its title) of the collapsed duplicates of a passage,
    each once, without the passage's own outlet."""
    own = article.outlet if article else None
    names: list[str] = []
    for article_id in also:
        other = articles.get(article_id)
        name = (other.outlet or other.title) if other else article_id
        if name and name != own and name not in names:
            names.append(name)
    return names


def where_published(published: str | None, outlet: str | None, title: str | None) -> str:
    """ "2024-06-30 · Al Jazeera · title" (the day, or "undated"; what is known), for a quoted sentence."""
    return " · ".join(x for x in ((published or "undated")[:10], outlet, title) if x)


def source_text(article: Article | None, others: Sequence[str] = ()) -> str:
    """Outlet · date · link · also reported by `others` (outlets or titles), for the terminal ("" when nothing is
    known)."""
    if article is None:
        return ""
    parts = [p for p in (article.outlet, article.published, safe_url(article.url)) if p]
    if others:
        parts.append("also reported by " + ", ".join(others))
    return " · ".join(parts)


def source_html(article: Article | None, others: Sequence[str] = ()) -> str:
    """Outlet · date · a link to the original · also reported by `others`, escaped ("" when nothing is known)."""
    if article is None:
        return ""
    parts = [f'<span class="rag-outlet">{html.escape(article.outlet)}</span>'] if article.outlet else []
    if article.published:
        # dir="ltr" isolates the date: inside an Arabic line 2024-06-30 would otherwise read as 30-06-2024
        day = html.escape(article.published[:10])
        parts.append(f'<time datetime="{html.escape(article.published)}" dir="ltr">{day}</time>')
    url = safe_url(article.url)
    if url:
        link = f'<a class="rag-original" href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">'
        parts.append(f"{link}original ↗</a>")
    if others:
        parts.append(f'<span class="rag-also">also reported by {html.escape(", ".join(others))}</span>')
    return " · ".join(parts)


def snippet_html(
    chunk: Chunk, article: Article | None, highlights: Sequence[Span] = (), others: Sequence[str] = ()
) -> str:
    """The cited chunk with its title, outlet, date, link and the outlets that carried it too, highlighted
    sentences in <mark>, right-to-left when Arabic."""
    dir_, lang = direction(chunk.text)
    title = html.escape(article.title) if article else html.escape(chunk.article_id)
    about = source_html(article, others)
    body = _marked(chunk.text, chunk.start, highlights)
    return (
        f'{STYLE}<div class="rag-snippet"><div class="rag-meta" dir="auto">{title}{" · " + about if about else ""}'
        f'</div><div class="rag-text" dir="{dir_}" lang="{lang}">{body}</div></div>'
    )


SCROLL_SCRIPT = (
    "<script>const el = document.getElementById('rag-hl'); if (el) el.scrollIntoView({block: 'center'});</script>"
)


def article_html(article: Article, chunk: Chunk, highlights: Sequence[Span] = ()) -> str:
    """The whole article, the cited chunk shaded, its highlighted sentences marked, scrolled into view."""
    dir_, lang = direction(article.text)
    about = source_html(article)
    body = _marked(article.text, 0, highlights, (chunk.start, chunk.end))
    return (
        f'{STYLE}<div class="rag-article"><div class="rag-meta" dir="auto"><b>{html.escape(article.title)}</b>'
        f"{' · ' + about if about else ''} · {html.escape(article.id)}</div>"
        f'<div class="rag-text" dir="{dir_}" lang="{lang}">{body}</div></div>{SCROLL_SCRIPT}'
    )


def quote_html(quote: KeyQuote, article: Article | None, others: Sequence[str] = (), closest: bool = False) -> str:
    """A key quote as a blockquote: verbatim, its key sentence highlighted, its [n], the outlet, date, link and
    title, and the outlets that carried it too. A closest passage (it may not answer) is grey, dashed and its key
    sentence only underlined: never styled as an answer."""
    kind = "rag-quote rag-closest" if closest else "rag-quote"
    dir_, lang = direction(quote.text)
    source = html.escape(article.title if article else quote.chunk.article_id)
    about = source_html(article, others)
    return (
        f'{STYLE}<blockquote class="{kind}"><div class="rag-text" dir="{dir_}" lang="{lang}">'
        f'{_marked(quote.text, quote.start, [quote.focus])} <span class="rag-cite">[{quote.n}]</span></div>'
        f'<div class="rag-meta" dir="auto">— {about + " · " if about else ""}{source}</div></blockquote>'
    )


def title_html(article: Article) -> str:
    """The article's title as a heading, then its id and what is known of it: outlet, date, author, language,
    a link to the original."""
    heading = f'<h3 dir="auto" style="margin:0">{html.escape(article.title)}</h3>'
    parts = [html.escape(article.id)]
    about = source_html(article)
    if about:
        parts.append(about)
    if article.author:
        parts.append(f"by {html.escape(article.author)}")
    if article.language:
        parts.append(f"language {html.escape(article.language)}")
    return f'{heading}<div class="rag-meta" dir="auto">{" · ".join(parts)}</div>'


def watch_hit_html(text: str, article: Article | None, link: str, others: Sequence[str] = (), new: bool = False) -> str:
    """An article that answers a watch: its key quote verbatim, then its title (a link to the article with the
    quote marked), outlet, date, the outlets that carried the story too, and a "new" badge when the reader has not
    seen it yet. An article no longer in the index says so."""
    dir_, lang = direction(text)
    badge = '<span class="rag-new">● new</span> ' if new else ""
    if article is None:
        title = '<span class="rag-note">no longer in the index</span>'
    else:
        title = f'<a href="{html.escape(link)}" target="_blank" rel="noopener">{html.escape(article.title)}</a>'
    about = source_html(article, others)
    return (
        f'{STYLE}<blockquote class="rag-quote rag-watch"><div class="rag-text" dir="{dir_}" lang="{lang}">'
        f'{html.escape(text)}</div><div class="rag-meta" dir="auto">{badge}— {title}'
        f"{' · ' + about if about else ''}</div></blockquote>"
    )


def statements_html(statements: Sequence[tuple[str, str]]) -> str:
    """An article's statements (speaker, sentence), escaped, each right to left where it is Arabic: "who is quoted
    in this article", one click from a citation."""
    rows = "".join(
        f'<li dir="auto"><b>{html.escape(who)}</b>: {html.escape(sentence)}</li>' for who, sentence in statements
    )
    return f'{STYLE}<ul class="rag-said" dir="auto">{rows}</ul>'


def sentence_html(text: str, meta: str, note: str = "", kind: str = "quote") -> str:
    """One sentence of an article as a blockquote, verbatim and escaped: `meta` (where it was published) below it,
    `note` (why it counts against a claim, or is only the closest) under that. `kind`: "for" (green), "against"
    (red), "closest" (grey, dashed) or "quote" (a time line's statement)."""
    kinds = {"for": "rag-quote rag-for", "against": "rag-quote rag-against", "closest": "rag-quote rag-closest"}
    dir_, lang = direction(text)
    extra = f'<div class="rag-note" dir="auto">{html.escape(note)}</div>' if note else ""
    return (
        f'{STYLE}<blockquote class="{kinds.get(kind, "rag-quote")}"><div class="rag-text" dir="{dir_}" lang="{lang}">'
        f'{html.escape(text)}</div><div class="rag-meta" dir="auto">— {html.escape(meta)}</div>{extra}</blockquote>'
    )
