"""A chat as a file to keep or share: Markdown (quotes verbatim, citations with outlet, date and link) and JSON
(every turn's answer as `rag ask --json` gives it, with its cited passages)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rag.state.chats import Chat, SavedSource, SavedTurn, now, source_status
from rag.types import Article

OUTCOMES = {
    "answer": "answered",
    "closest": "the articles may not answer: closest passages only",
    "refused": "the articles do not say",
    "failed": "no answer (the answer model failed)",
}


class Cited(Protocol):
    """A cited passage as a line names it: a saved one (SavedSource) or one of an answer view (Source)."""

    @property
    def n(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def outlet(self) -> str | None: ...
    @property
    def published(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...


def citation_line(s: Cited) -> str:
    """`[1] Title · Outlet · 2023-03-21 · https://…` (what is known of it): the exports' and the OpenAI-compatible
    reply's Sources list."""
    parts = [s.title, s.outlet or "", (s.published or "")[:10], s.url or ""]
    return f"[{s.n}] " + " · ".join(p for p in parts if p)


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().splitlines())


def chat_markdown(chat: Chat, turns: Sequence[SavedTurn], articles: Mapping[str, Article] | None = None) -> str:
    """The chat in Markdown: each question, its answer as given, the key quotes verbatim, and its citations with
    outlet, date and link (and, given the index's articles, a note on each whose article changed since)."""
    lines = [f"# {chat.title}", "", f"Exported {now()} · {len(turns)} question(s) · chat `{chat.id}`", ""]
    for t in turns:
        lines += [f"## {t.n}. {t.question}", ""]
        about = [t.asked_at, OUTCOMES.get(t.outcome, t.outcome)]
        if t.index_version:
            about.append(f"index version {t.index_version}")
        lines += [f"*{' · '.join(about)}*", ""]
        if t.answer:
            lines += [t.answer.strip(), ""]
        quotes = [q for q in t.data.get("key_quotes") or () if q.get("quote") and q["quote"] not in t.answer]
        if quotes and t.outcome != "refused":
            lines += ["Key quotes (verbatim):", ""]
            lines += [_quoted(f"{q['quote']} [{q['n']}]") + "\n" for q in quotes]
        if t.sources:
            lines += ["Sources:", ""]
            cited = {c.get("n"): c for c in t.data.get("citations") or ()}
            for s in t.sources:
                lines.append(f"- {citation_line(s)}")
                quote = (cited.get(s.n) or {}).get("quote")
                if quote and quote not in t.answer:
                    lines.append(f"  > {quote}")
                if articles is not None and (status := source_status(s, articles)):
                    lines.append(f"  ⚠ {status}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def chat_json(chat: Chat, turns: Sequence[SavedTurn], articles: Mapping[str, Article] | None = None) -> dict[str, Any]:
    """The chat as JSON: the chat, then each turn with its answer (as `rag ask --json`) and cited passages (with
    `status`: "" unchanged, else what happened to the article, when the index's articles are given)."""

    def source(s: SavedSource) -> dict[str, Any]:
        row = {
            "n": s.n,
            "article_id": s.article_id,
            "chunk_id": s.chunk_id,
            "title": s.title,
            "outlet": s.outlet,
            "published": s.published,
            "url": s.url,
            "text": s.text,
            "supported": s.supported,
        }
        if articles is not None:
            row["status"] = source_status(s, articles)
        return row

    return {
        "chat": chat.as_json(),
        "exported_at": now(),
        "turns": [
            {
                "n": t.n,
                "question": t.question,
                "asked_at": t.asked_at,
                "index_version": t.index_version,
                "outcome": t.outcome,
                "answer": dict(t.data),
                "sources": [source(s) for s in t.sources],
            }
            for t in turns
        ],
    }
