"""The chat page: ask about the articles, read a streamed answer, open each cited Arabic passage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import streamlit as st
import streamlit.components.v1 as components

from rag.answer.pipeline import AnswerPipeline
from rag.answer.render import (
    STYLE,
    also_reported_by,
    article_html,
    escape_markdown,
    isolated,
    quote_html,
    sentence_html,
    snippet_html,
    statements_html,
    title_html,
    watch_hit_html,
)
from rag.answer.view import AnswerView, Block, OutletGroup, Source, answer_view, groups_line, retrieved_view
from rag.attribute.said import other_statements, said, said_line, timeline_summary, wire_copies
from rag.check.claims import VERDICT_TEXT, checker_for, published_line, sections
from rag.config import Settings, get_settings
from rag.embed.embedder import Embedder, embedder_for, use_query_threads
from rag.errors import RagError
from rag.index.manifest import read_manifest
from rag.index.versions import live_version
from rag.llm import client
from rag.llm.local_server import server_status
from rag.retrieve.filters import make_filter
from rag.retrieve.followup import Turn
from rag.retrieve.retriever import Retriever, load_retriever
from rag.sources.store import SourceStore
from rag.sources.watch import WatchStore
from rag.state.access import page_owner, user_allowed
from rag.state.chats import ChatNotFoundError, ChatStore, SavedTurn, saved_sources, source_status
from rag.state.db import StateDB
from rag.state.export import chat_json, chat_markdown
from rag.types import Article, Filter

st.set_page_config(page_title="News answers", page_icon="📰", layout="centered")


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_embedder(model: str, _settings: Settings) -> Embedder:
    """The embedding model (`model` is the cache key), loaded once per process."""
    return embedder_for(_settings)


@st.cache_resource(show_spinner="Loading the index…", max_entries=2)
def get_retriever(index_dir: str, version: str | None, _settings: Settings) -> Retriever:
    """The index, loaded once per version: a build or update is picked up at the next question."""
    retriever = load_retriever(_settings, get_embedder(_settings.embedding_model, _settings))
    use_query_threads(_settings.query_threads)  # one thread per search: many sessions search at once
    retriever.warm_up()
    return retriever


@st.cache_resource(show_spinner="Starting the answer model…")
def get_chat(model: str, endpoint: str | None, _settings: Settings) -> client.ChatModel:
    """The answer model (starts the embedded server when no endpoint is configured)."""
    return client.make_chat_model(_settings)


@st.cache_resource
def get_chats(state_dir: str) -> ChatStore:
    """The chats of the state database (RAG_STATE_DIR), shared by every session."""
    return ChatStore(StateDB(Path(state_dir)))


@st.cache_resource
def get_watches(state_dir: str) -> tuple[WatchStore, SourceStore]:
    """The watches and the sources' items (for "also reported by") of the state database."""
    db = StateDB(Path(state_dir))
    return WatchStore(db), SourceStore(db)


def login_configured() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section: every reader then signs in (OpenID Connect)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all: no login
        return False


def signed_in(settings: Settings) -> str:
    """With login on: stop the page until the reader has signed in and is let in (RAG_ALLOWED_USERS); whose chats
    the page shows ("" without login)."""
    if not login_configured():
        return ""
    if not st.user.is_logged_in:
        st.title("News answers")
        st.info("This archive is for the desk's members: sign in to ask.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    email = st.user.get("email")
    if not user_allowed(str(email) if email else None, settings.allowed_users):
        st.error(f"{email or 'This account'} may not use this page: ask the desk to add it to RAG_ALLOWED_USERS.")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    return page_owner({"email": email, "sub": st.user.get("sub")})


def turn_messages(turn: SavedTurn, articles: Mapping[str, Article]) -> list[dict[str, Any]]:
    """A saved turn as the page's two messages; each cited passage whose article changed or left the index since
    says so."""
    record: dict[str, Any] = dict(turn.page) if turn.page else {
        "role": "assistant",
        "content": turn.answer,
        "lead": turn.answer,
        "error": turn.data.get("error"),
        "meta": f"Asked through the API on {turn.asked_at}",
    }
    stale = {str(s.n): status for s in turn.sources if (status := source_status(s, articles))}
    if stale:
        record["stale"] = stale
    return [{"role": "user", "content": turn.question, "lead": turn.question}, record]


def open_chat(store: ChatStore, owner: str, articles: Mapping[str, Article]) -> None:
    """The chat named in the address (?chat=ID) in this session: a reload or a restart keeps it."""
    wanted = st.query_params.get("chat")
    if wanted and wanted != st.session_state.get("chat_id"):
        try:
            turns = store.turns(wanted, owner)
        except ChatNotFoundError as exc:
            st.warning(str(exc))
            del st.query_params["chat"]
            st.session_state.chat_id, st.session_state.messages = None, []
            return
        st.session_state.messages = [m for t in turns for m in turn_messages(t, articles)]
        st.session_state.chat_id = wanted
    elif not wanted and st.session_state.get("chat_id"):
        st.query_params["chat"] = st.session_state.chat_id


def new_chat() -> None:
    st.session_state.chat_id, st.session_state.messages = None, []
    st.query_params.pop("chat", None)


def chats_sidebar(store: ChatStore, owner: str, articles: Mapping[str, Article]) -> None:
    """The sidebar's chats: new, open, and for the open one rename, export (Markdown, JSON) and delete."""
    st.subheader("Chats")
    st.button("New chat", on_click=new_chat, width="stretch", icon=":material/add:")
    current = st.session_state.get("chat_id")
    listed = store.chats(owner, limit=100)
    with st.container(height=230 if len(listed) > 5 else "content", border=False):  # the filters stay in reach
        for chat in listed:
            label = chat.title if len(chat.title) <= 38 else chat.title[:38] + "…"
            kind: Literal["primary", "tertiary"] = "primary" if chat.id == current else "tertiary"
            if st.button(escape_markdown(label), key=f"chat-{chat.id}", width="stretch", type=kind):
                st.query_params["chat"] = chat.id
                st.rerun()
    if not current:
        return
    try:
        chat, turns = store.get(current, owner), store.turns(current, owner)
    except ChatNotFoundError:
        new_chat()
        return
    with st.expander("This chat", icon=":material/chat:"):
        title = st.text_input("Title", chat.title, key=f"title-{chat.id}")
        if st.button("Rename", key="rename") and title.strip() and title != chat.title:
            store.rename(chat.id, owner, title)
            st.rerun()
        st.download_button(
            "Export as Markdown",
            chat_markdown(chat, turns, articles),
            file_name=f"chat-{chat.id}.md",
            mime="text/markdown",
            width="stretch",
            key="export-md",
        )
        st.download_button(
            "Export as JSON",
            json.dumps(chat_json(chat, turns, articles), ensure_ascii=False, indent=2),
            file_name=f"chat-{chat.id}.json",
            mime="application/json",
            width="stretch",
            key="export-json",
        )
        if st.button("Delete this chat", width="stretch", key="ask-delete"):
            st.session_state.confirm_delete = chat.id
        if st.session_state.get("confirm_delete") == chat.id:
            st.warning(f"Delete this chat and its {len(turns)} answer(s)? This cannot be undone.")
            left, right = st.columns(2)
            if left.button("Delete", type="primary", key="delete-chat"):
                store.delete(chat.id, owner)
                new_chat()
                st.rerun()
            if right.button("Keep", key="keep-chat"):
                st.session_state.confirm_delete = None
                st.rerun()


def article_link(cite: dict[str, Any]) -> str:
    """A link to this page in article mode, with the cited chunk and its highlighted sentences."""
    spans = ",".join(f"{a}-{b}" for a, b in cite["highlights"])
    return "?" + urlencode({"article": cite["article_id"], "chunk": cite["chunk_id"], "hl": spans})


def sentence_link(retriever: Retriever, article_id: str, start: int, end: int, chunk_id: str | None = None) -> str:
    """Article mode with one sentence highlighted (its passage found when not given)."""
    chunk = retriever.index.chunk(chunk_id) if chunk_id else retriever.index.chunk_at(article_id, start, end)
    cite = {"article_id": article_id, "chunk_id": chunk.id if chunk else "", "highlights": [(start, end)]}
    return article_link(cite)


def show_watchlist(retriever: Retriever, watches: WatchStore, sources: SourceStore, owner: str) -> None:
    """The Watchlist: saved questions, each with the new articles that answered it (● new: since this reader last
    looked; opening the list counts as looking)."""
    st.title("Watchlist")
    st.caption(
        "Saved questions. After each `rag sources pull` the new articles that answer one are listed under it; "
        "● new marks those you have not seen."
    )
    with st.form("add-watch", clear_on_submit=True, border=False):
        text = st.text_input("Watch a question or a claim", placeholder="What did Mao Ning say about dual-use exports?")
        if st.form_submit_button("Watch", icon=":material/visibility:") and text.strip():
            try:
                watches.add(text)
            except RagError as exc:
                st.error(str(exc))
    listed = watches.watches(owner)
    if not listed:
        st.info("No watches yet: add a question above, or run `rag watch add \"QUESTION\"`.")
        return
    found = {w.id: watches.hits(w.id, owner) for w in listed}
    if not st.session_state.get("watch_open"):  # this visit's "new": what was unseen when the list was opened
        st.session_state.watch_new = {(h.watch_id, h.article_id) for hits in found.values() for h in hits if h.new}
        st.session_state.watch_open = True
        watches.looked(owner)
    unseen = st.session_state.watch_new
    articles = retriever.index.articles
    for watch in listed:
        hits = found[watch.id]
        fresh = sum((watch.id, h.article_id) in unseen for h in hits)
        st.subheader(watch.question, anchor=False)
        checked = f"checked {watch.checked}" if watch.checked else "not checked yet: the next pull checks it"
        st.caption(escape_markdown(f"{len(hits)} article(s) · {fresh} new · {checked}"))
        for h in hits:
            article = articles.get(h.article_id)
            link = sentence_link(retriever, h.article_id, h.start, h.end, h.chunk_id) if article else ""
            others = [name for name, _ in sources.also_reported_by(h.article_id)]
            st.html(watch_hit_html(h.quote, article, link, others, (watch.id, h.article_id) in unseen))
        if st.button("Stop watching", key=f"unwatch-{watch.id}", icon=":material/visibility_off:"):
            watches.remove(watch.id)
            st.rerun()


VERDICT_SHOW = {"supported": "success", "contradicted": "error", "mixed": "warning", "not found": "info"}


def show_check(retriever: Retriever, scope: Filter) -> None:
    """The claim check: a claim judged against the articles, with the sentences for and against it."""
    st.title("Check a claim")
    st.caption(
        "A statement in English or Arabic, judged against the articles: supported, contradicted, mixed (they "
        "disagree) or not found. Only sentences that say it count; the closest are shown as such."
    )
    with st.form("check", border=False):
        claim = st.text_input("Claim", key="claim", placeholder="China has sent weapons to Russia.")
        asked = st.form_submit_button("Check")
    if asked and claim.strip():
        with st.spinner("Reading the articles…"):
            st.session_state.verdict = checker_for(retriever).check(claim, scope)
    verdict = st.session_state.get("verdict")
    if verdict is None:
        return
    if verdict.scope is not None and verdict.scope.active:
        st.caption(escape_markdown(f"Filter: {verdict.scope.describe()}"))
    getattr(st, VERDICT_SHOW[verdict.verdict])(
        f"**{VERDICT_TEXT[verdict.verdict]}**  \n{escape_markdown(verdict.claim)}"
    )
    articles = retriever.index.articles
    for i, (title, rows) in enumerate(sections(verdict)):
        st.subheader(f"{title} ({len(rows)})")
        for j, e in enumerate(rows):
            st.html(sentence_html(e.sentence, published_line(e, articles), e.reason, e.stance))
            link = sentence_link(retriever, e.article_id, e.start, e.end, e.chunk_id)
            st.link_button("Open the article ↗", link, key=f"check-open-{i}-{j}")


def show_said(retriever: Retriever, scope: Filter) -> None:
    """Who said what: a person's statements as a time line, each with the article's other statements."""
    st.title("Who said what")
    st.caption("A person, an office or a body, in English or Arabic; optionally a topic. Oldest first.")
    with st.form("said", border=False):
        left, right = st.columns(2)
        person = left.text_input("Who", key="person", placeholder="Mao Ning")
        about = right.text_input("About (optional)", key="about", placeholder="dual-use exports")
        asked = st.form_submit_button("Show the time line")
    if asked and person.strip():
        with st.spinner("Finding the statements…"):
            st.session_state.timeline = said(retriever, person, about.strip() or None, scope)
    timeline = st.session_state.get("timeline")
    if timeline is None:
        return
    (st.markdown if timeline.said else st.info)(escape_markdown(timeline_summary(timeline)))
    articles = retriever.index.articles
    copies = wire_copies(timeline.said)
    for i, row in enumerate(r for r in timeline.said if id(r) in copies):
        s = row.statement
        outlets = also_reported_by(articles.get(s.article_id), copies[id(row)], articles)
        st.html(sentence_html(row.text, said_line(row, outlets)))
        left, right = st.columns([1, 3])
        link = sentence_link(retriever, s.article_id, s.start, s.end)
        left.link_button("Open the article ↗", link, key=f"said-open-{i}")
        others = [(o.statement.speaker, o.text) for o in other_statements(retriever, s.article_id) if o.statement != s]
        if others:
            with right.expander(f"The article's other statements ({len(others)})"):
                st.html(statements_html(others))


def show_article_page(retriever: Retriever) -> None:
    """Article mode (?article=…&chunk=…&hl=…): the whole article, the cited passage highlighted and in view."""
    params = st.query_params
    article = retriever.index.articles.get(params.get("article", ""))
    chunk = retriever.index.chunk(params.get("chunk", ""))
    if article is None or chunk is None or chunk.article_id != article.id:
        st.error("This article or passage is not in the index (it may have been rebuilt). Ask the question again.")
        return
    spans = []
    for part in filter(None, params.get("hl", "").split(",")):
        a, _, b = part.partition("-")
        if a.isdigit() and b.isdigit():
            spans.append((int(a), int(b)))
    st.html(STYLE + title_html(article))
    st.caption(
        "The cited passage is shaded; the sentences the answer model read are marked. Close this tab to go back."
    )
    components.html(article_html(article, chunk, spans), height=720, scrolling=True)


def source_record(s: Source, retriever: Retriever) -> dict[str, Any]:
    """What the page keeps of a source between reruns (plain data, the snippet already escaped), with who is quoted
    in its article (rag/attribute: one click away)."""
    quoted = [(r.statement.speaker, r.text) for r in other_statements(retriever, s.chunk.article_id)]
    return {
        "quoted": statements_html(quoted) if quoted else "",
        "quoted_count": len(quoted),
        "n": s.n,
        "article_id": s.chunk.article_id,
        "chunk_id": s.chunk.id,
        "title": s.title,
        "outlet": s.outlet,
        "published": s.published[:10] if s.published else None,
        "url": s.url,
        "html": snippet_html(s.chunk, s.article, s.highlights, s.others),
        "highlights": [list(h) for h in s.highlights],
        "supported": s.supported,
        "reason": s.reason,
        "verdict": s.verdict,
        "warn": s.warn,
    }


def block_html(block: Block) -> str:
    """A key quote's escaped blockquote (with the outlets that carried it too), grey and dashed when it is only the
    closest passage."""
    return quote_html(block.quote, block.source.article, block.source.others, closest=block.closest)


def group_label(g: OutletGroup) -> str:
    """An outlet group's heading over its quotes: outlet · day · also reported by."""
    parts = [g.outlet or "Unknown outlet", isolated(g.published) if g.published else ""]
    also = f"also reported by {', '.join(g.also)}" if g.also else ""
    return escape_markdown(" · ".join(p for p in (*parts, also) if p))


def answer_record(view: AnswerView, retriever: Retriever) -> dict[str, Any]:
    """What the page keeps of an answer between reruns: its view, as plain data."""
    aside = view.aside
    return {
        "role": "assistant",
        "content": view.text,
        "mode": view.mode,
        "outcome": view.outcome,
        "lead": view.lead,
        "lead_warn": view.lead_warn,
        "quotes": [{"n": b.quote.n, "html": block_html(b)} for b in view.blocks],
        "alerts": list(view.alerts),
        "unsupported": view.unsupported,
        "aside": aside and {"intro": aside.intro, "warn": aside.warn, "html": block_html(aside.block)},
        "sources": [source_record(s, retriever) for s in view.sources],
        "heading": view.heading,
        "meta": view.meta,
        "warning": view.notice,
        "searched_as": view.searched_as,
        "groups": [{"label": group_label(g), "ns": list(g.ns)} for g in view.groups],
        "by_outlet": groups_line(view.groups),
    }


STEP_LABELS = {
    "rewrite": "Reading the conversation…",
    "search": "Searching the articles…",
    "quotes": "Picking the sentences that answer…",
    "answer": "Asking the answer model…",
    "verify": "Checking the citations…",
}


def conversation() -> tuple[Turn, ...]:
    """The finished question-and-answer turns of this chat, oldest first."""
    turns, asked = [], None
    for message in st.session_state.messages:
        if message["role"] == "user":
            asked = message["content"]
        elif asked and message.get("content") and not message.get("error"):
            turns.append(Turn(asked, message["content"]))
            asked = None
    return tuple(turns)


def show_sources(message: dict[str, Any], key: str) -> None:
    """One popover per source: the snippet, whether it supports the answer, and buttons that open the whole
    article and the original; a saved answer's source whose article changed since says so."""
    sources, stale = message.get("sources", []), message.get("stale", {})
    if not sources:
        return
    st.caption(message["heading"])
    cols = st.columns(min(len(sources), 4))
    for i, cite in enumerate(sources):
        about = (f" · {cite['outlet']}" if cite.get("outlet") else "") + (
            f" · {isolated(cite['published'])}" if cite.get("published") else ""
        )
        title = cite["title"] if len(cite["title"]) <= 40 else cite["title"][:40] + "…"
        label = escape_markdown(f"[{cite['n']}] {title}{about}") + (" · ⚠ unverified" if cite["warn"] else "")
        changed = stale.get(str(cite["n"]))
        label += " · ⚠ changed" if changed else ""
        with cols[i % len(cols)].popover(label, width="stretch", key=f"cite-{key}-{i}"):
            if changed:
                st.warning(escape_markdown(changed))
            if cite["verdict"]:
                (st.warning if cite["warn"] else st.caption)(cite["verdict"])
            st.html(cite["html"])
            st.link_button("Open the full article ↗", article_link(cite), key=f"open-{key}-{i}")
            if cite.get("quoted"):
                with st.expander(f"Who is quoted in this article ({cite['quoted_count']})"):
                    st.html(cite["quoted"])
            if cite.get("url"):
                st.link_button("Open the original ↗", cite["url"], key=f"original-{key}-{i}")


def filter_sidebar(retriever: Retriever) -> Filter:
    """The sidebar's filters: a publication date range and outlets (empty = every article)."""
    records = retriever.index.records
    first, last, undated = records.dates()
    outlets = records.outlets()
    st.subheader("Filters")
    since = until = None
    if first and last:
        picked = st.date_input(
            "Published between",
            value=[],
            min_value=date.fromisoformat(first),
            max_value=date.fromisoformat(last),
            key="dates",
            help=f"Articles are dated {first} to {last}"
            + (f"; {undated} undated article(s) are left out by a date range." if undated else "."),
        )
        days = list(picked) if isinstance(picked, (list, tuple)) else [picked] if picked else []
        since = days[0].isoformat() if days else None
        until = days[1].isoformat() if len(days) > 1 else None
    chosen = st.multiselect(
        "Outlets",
        list(outlets),
        key="outlets",
        format_func=lambda name: f"{name} ({outlets[name]})",
        placeholder="All outlets",
    )
    try:
        return make_filter(since, until, chosen)
    except RagError as exc:
        st.error(str(exc))
        return Filter()


def save_turn(
    store: ChatStore, owner: str, question: str, record: dict[str, Any], view: AnswerView | None, version: str | None
) -> None:
    """Keep the turn in the open chat (a new one, titled by the question, for the first): it survives a reload,
    a restart of the page and another device."""
    data = dict(view.data) if view is not None else {"question": question, "answer": None}
    if record.get("error"):
        data["error"] = record["error"]
    try:
        if not st.session_state.get("chat_id"):
            st.session_state.chat_id = store.create(owner, question).id
            st.query_params["chat"] = st.session_state.chat_id
        sources = saved_sources(view.sources) if view is not None else ()
        store.add_turn(st.session_state.chat_id, owner, question, data, sources, index_version=version, page=record)
    except RagError as exc:
        record["warning"] = f"This answer was not saved: {exc}"


settings = get_settings()
owner = signed_in(settings)
chats = get_chats(str(settings.state_dir))

with st.sidebar:
    st.header("News answers")
    chats_box = st.container()  # filled once the index is loaded: the chats come first
    try:
        manifest = read_manifest(settings.index_dir)
    except RagError as exc:
        st.error(str(exc))
        st.stop()
    st.subheader("Index")
    st.markdown(
        f"**{len(manifest.articles)}** articles · **{manifest.chunks}** chunks  \n"
        f"Model: `{manifest.model}` ({manifest.dim} dimensions)  \nBuilt: {manifest.built_at}"
    )
    st.subheader("Answer model")
    st.markdown(f"`{settings.answer_model}`  \n{settings.answer_base_url or 'https://api.openai.com/v1'}")
    if settings.uses_embedded_llm:
        level, status = server_status(settings)
        show = st.error if level == "error" else st.warning if level == "warning" else st.caption
        show(escape_markdown(status))
    k = st.slider("Passages to retrieve", 1, 10, settings.answer_k, help="How many passages the answer model reads.")
    if login_configured():
        st.caption(escape_markdown(f"Signed in as {owner.removeprefix('user:')}"))
        st.button("Sign out", on_click=st.logout, key="sign-out")

version = live_version(settings.index_dir)
try:
    retriever = get_retriever(str(settings.index_dir), version, settings)
except RagError as exc:
    st.error(str(exc))
    st.stop()

if "article" in st.query_params:
    show_article_page(retriever)
    st.stop()

if "messages" not in st.session_state:
    st.session_state.messages = []
open_chat(chats, owner, retriever.index.articles)

with chats_box:
    chats_sidebar(chats, owner, retriever.index.articles)
with st.sidebar:
    scope = filter_sidebar(retriever)

watches, sources = get_watches(str(settings.state_dir))
unseen = sum(w.new for w in watches.watches(owner))  # hits found since this reader last opened the Watchlist
VIEWS = ("Ask", "Check a claim", "Who said what", "Watchlist")
view = (
    st.segmented_control(
        "View",
        VIEWS,
        default="Ask",
        key="view",
        label_visibility="collapsed",
        format_func=lambda v: f"Watchlist · {unseen} new" if v == "Watchlist" and unseen else v,
    )
    or "Ask"
)
if view == "Watchlist":
    show_watchlist(retriever, watches, sources, owner)
    st.stop()
st.session_state.watch_open = False  # the next visit to the Watchlist counts as looking again
if view == "Check a claim":
    show_check(retriever, scope)
    st.stop()
if view == "Who said what":
    show_said(retriever, scope)
    st.stop()

st.title("Ask the news")
st.caption("Questions in English or Arabic; answers cite the Arabic articles. Click a citation to read the source.")

for i, message in enumerate(st.session_state.messages):
    with st.chat_message(message["role"]):
        if message.get("filter"):
            st.caption(escape_markdown(f"Filter: {message['filter']}"))
        if message.get("error"):
            st.error(message["error"])
        if message.get("warning"):
            st.warning(escape_markdown(message["warning"]))
        if message.get("lead"):
            if message.get("lead_warn"):  # the closest passages follow, not an answer
                st.warning(escape_markdown(message["lead"]), icon=":material/search:")
            else:
                st.markdown(message["lead"])
        quotes, groups = message.get("quotes", []), message.get("groups", [])
        if quotes and groups:  # from two or more outlets: side by side, each under its outlet and day
            for group in groups:
                st.caption(f"**{group['label']}**")
                for quote in (q for q in quotes if q["n"] in group["ns"]):
                    st.html(quote["html"])
        else:
            for quote in quotes:
                st.html(quote["html"])
            if groups:
                st.caption(escape_markdown(f"By outlet: {message['by_outlet']}"))
        for alert in message.get("alerts", []):
            st.warning(alert, icon="⚠️")
        if aside := message.get("aside"):
            if aside["warn"]:
                st.warning(escape_markdown(aside["intro"]), icon=":material/search:")
            else:
                st.caption(escape_markdown(aside["intro"]))
            st.html(aside["html"])
        show_sources(message, key=str(i))
        if message.get("searched_as"):
            with st.expander("Searched as"):
                st.markdown(escape_markdown(message["searched_as"]))
        if message.get("meta"):
            st.caption(escape_markdown(message["meta"]))

if question := st.chat_input("Ask about the articles…"):
    question = question.strip()
if question:
    st.session_state.messages.append({"role": "user", "content": question, "lead": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        record: dict[str, Any] = {"role": "assistant", "content": ""}
        if scope.active:
            st.caption(escape_markdown(f"Filter: {scope.describe()}"))
        pipeline = AnswerPipeline(
            settings, retriever, lambda: get_chat(settings.answer_model, settings.answer_base_url, settings)
        )
        step = st.empty()

        def show_step(name: str) -> None:
            step.caption(STEP_LABELS.get(name, name))

        def show_wait(ahead: int) -> None:
            """While other people's questions go first: how many are ahead (then the answer model's turn)."""
            step.caption(f"Waiting for the answer model: {ahead} ahead…" if ahead else STEP_LABELS["answer"])

        stream, shown = None, None
        try:
            stream = pipeline.ask(question, conversation(), k=k, on_step=show_step, on_wait=show_wait, scope=scope)
            st.write_stream(stream)  # shown as it comes; the rerun below lays the answer out from its view
            step.empty()
            shown = answer_view(stream.answer, stream.evidence, retriever.index.articles, scope)
            record = answer_record(shown, retriever)
        except RagError as exc:
            step.empty()
            if stream is None:  # failed before or during the search: nothing to show but the message
                record["error"] = str(exc)
            else:
                shown = retrieved_view(stream.evidence, retriever.index.articles)
                record = answer_record(shown, retriever)
                record["error"] = f"{exc} The passages retrieved for your question are below."
                record["cited"] = False
        record["filter"] = scope.describe()
        save_turn(chats, owner, question, record, shown, version)
        st.session_state.messages.append(record)
    st.rerun()
