"""The chat page: ask about the articles, read a streamed answer, open each cited Arabic passage."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

import streamlit as st
import streamlit.components.v1 as components

from rag.answer.pipeline import AnswerPipeline
from rag.answer.prompts import CLOSEST_INTROS, UNCERTAIN_INTROS
from rag.answer.render import (
    STYLE,
    article_html,
    escape_markdown,
    isolated,
    quote_html,
    safe_url,
    snippet_html,
    title_html,
)
from rag.config import Settings, get_settings
from rag.embed.embedder import Embedder, embedder_for, use_query_threads
from rag.errors import RagError
from rag.index.manifest import read_manifest
from rag.index.versions import live_version
from rag.llm import client
from rag.llm.local_server import CRASH_REPORT, server_status
from rag.retrieve.filters import make_filter
from rag.retrieve.followup import Turn
from rag.retrieve.retriever import Retriever, load_retriever
from rag.text.arabic import detect_language
from rag.types import Chunk, Citation, Filter, KeyQuote

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


def article_link(cite: dict[str, Any]) -> str:
    """A link to this page in article mode, with the cited chunk and its highlighted sentences."""
    spans = ",".join(f"{a}-{b}" for a, b in cite["highlights"])
    return "?" + urlencode({"article": cite["article_id"], "chunk": cite["chunk_id"], "hl": spans})


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


def citation_record(
    n: int,
    chunk: Chunk,
    highlights: tuple[tuple[int, int], ...],
    retriever: Retriever,
    cite: Citation | None = None,
    also: tuple[str, ...] = (),
) -> dict[str, Any]:
    """What the page keeps of a citation between reruns (plain data, the snippet already escaped)."""
    articles = retriever.index.articles
    article = articles.get(chunk.article_id)
    return {
        "n": n,
        "article_id": chunk.article_id,
        "chunk_id": chunk.id,
        "title": article.title if article else chunk.article_id,
        "outlet": article.outlet if article else None,
        "published": article.published[:10] if article and article.published else None,
        "url": safe_url(article.url) if article else None,
        "html": snippet_html(chunk, article, highlights, cite.also if cite else also, articles),
        "highlights": [list(h) for h in highlights],
        "supported": cite.supported if cite else None,
        "reason": cite.reason if cite else "",
    }


def quote_record(
    quote: KeyQuote, retriever: Retriever, also: tuple[str, ...] = (), closest: bool = False
) -> dict[str, Any]:
    """What the page keeps of a key quote: its escaped blockquote (with the outlets that carried it too), grey and
    dashed when it is only the closest passage."""
    articles = retriever.index.articles
    article = articles.get(quote.chunk.article_id)
    return {"n": quote.n, "html": quote_html(quote, article, also, articles, closest=closest)}


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
    """One popover per citation: the snippet, and a button that opens the whole article."""
    sources = message.get("sources", [])
    if not sources:
        return
    st.caption("Sources" if message.get("cited", True) else "Retrieved passages (the answer model did not answer)")
    cols = st.columns(min(len(sources), 4))
    for i, cite in enumerate(sources):
        about = (f" · {cite['outlet']}" if cite.get("outlet") else "") + (
            f" · {isolated(cite['published'])}" if cite.get("published") else ""
        )
        title = cite["title"] if len(cite["title"]) <= 40 else cite["title"][:40] + "…"
        flag = " · ⚠ unverified" if cite.get("supported") is False else ""
        label = escape_markdown(f"[{cite['n']}] {title}{about}") + flag
        with cols[i % len(cols)].popover(label, width="stretch", key=f"cite-{key}-{i}"):
            if cite.get("supported") is False:
                st.warning(f"Unverified: {cite['reason']}. The closest sentence of the passage is highlighted.")
            elif cite.get("supported"):
                st.caption("✓ The highlighted sentence supports the answer.")
            st.html(cite["html"])
            st.link_button("Open the full article ↗", article_link(cite), key=f"open-{key}-{i}")
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


settings = get_settings()

with st.sidebar:
    st.header("News answers")
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
    if st.button("New chat", width="stretch"):
        st.session_state.messages = []

try:
    retriever = get_retriever(str(settings.index_dir), live_version(settings.index_dir), settings)
except RagError as exc:
    st.error(str(exc))
    st.stop()

if "article" in st.query_params:
    show_article_page(retriever)
    st.stop()

with st.sidebar:
    scope = filter_sidebar(retriever)

if "messages" not in st.session_state:
    st.session_state.messages = []

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
        if message.get("content"):
            if message.get("quotes") and message.get("outcome") == "closest":
                st.warning(
                    escape_markdown(message["intro"]), icon=":material/search:"
                )  # the closest passages, not an answer
            else:
                st.markdown(message["intro"] if message.get("quotes") else message["content"])
        for quote in message.get("quotes", []):
            st.html(quote["html"])
        if message.get("unsupported"):
            st.warning("No cited passage supports this answer: read the sources before trusting it.", icon="⚠️")
        if message.get("closest"):
            st.caption(escape_markdown(message["closest"]["intro"]))
            st.html(message["closest"]["html"])
        if message.get("key_quote"):
            if message.get("uncertain"):  # the model answered, but this may not answer: the closest passage
                st.warning(escape_markdown(message["uncertain"]), icon=":material/search:")
            else:
                st.caption("Key quote from the articles (verbatim):")
            st.html(message["key_quote"]["html"])
        show_sources(message, key=str(i))
        if message.get("searched_as"):
            with st.expander("Searched as"):
                st.markdown(escape_markdown(message["searched_as"]))
        if message.get("meta"):
            st.caption(message["meta"])

if question := st.chat_input("Ask about the articles…"):
    question = question.strip()
if question:
    st.session_state.messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        record: dict[str, Any] = {"role": "assistant", "content": "", "filter": scope.describe()}
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

        stream = None
        try:
            stream = pipeline.ask(question, conversation(), k=k, on_step=show_step, on_wait=show_wait, scope=scope)
            if pipeline.mode == "generate":
                st.write_stream(stream)
            answer = stream.answer
            step.empty()
            record["content"] = answer.text
            record["mode"] = answer.mode
            record["outcome"] = answer.outcome
            record["unsupported"] = answer.unsupported
            record["sources"] = [citation_record(c.n, c.chunk, c.highlights, retriever, c) for c in answer.citations]
            closest = answer.outcome == "closest"
            if answer.mode == "quote" and not answer.refused:
                record["intro"] = answer.text.split("\n", 1)[0]
                record["quotes"] = [
                    quote_record(q, retriever, answer.hits[q.n - 1].also, closest) for q in stream.strong_quotes
                ]
            elif answer.closest is not None:
                record["closest"] = {
                    "intro": CLOSEST_INTROS[detect_language(question)],
                    **quote_record(answer.closest, retriever, answer.hits[answer.closest.n - 1].also, True),
                }
            elif answer.key_quotes and not answer.refused:
                best = answer.key_quotes[0]
                record["key_quote"] = quote_record(best, retriever, answer.hits[best.n - 1].also, closest)
                if closest:  # the model answered, but the estimate doubts it and no citation is verified
                    record["uncertain"] = UNCERTAIN_INTROS[detect_language(question)]
            unverified = sum(c.supported is False for c in answer.citations)
            if answer.refused:
                note = "the articles do not say"
            elif closest:
                note = "the articles may not answer: closest passages only" + (
                    f", {unverified} unverified" if unverified else ""
                )
            elif answer.mode == "quote":
                note = f"{len(answer.citations)} quoted passage(s), verbatim"
            else:
                note = f"{len(answer.citations)} cited passage(s)" + (
                    f", {unverified} unverified" if unverified else ""
                )
            by = answer.model or ("key quotes" if answer.mode == "quote" else "the retrieval check")
            record["meta"] = f"Answered by {by} in {answer.seconds:.1f} s · {note}"
            if answer.confidence is not None:
                record["meta"] += f" · answerability {answer.confidence:.0%}"
            if answer.standalone:
                record["searched_as"] = answer.standalone
            if stream.evidence.translation:
                record["meta"] += f" · also searched in Arabic as «{escape_markdown(stream.evidence.translation)}»"
            elif (skipped := stream.evidence.translation_skipped) and skipped.startswith(CRASH_REPORT):
                record["warning"] = f"Searched without the Arabic rendering: {skipped}"  # shown above the answer
                record["meta"] += " · searched without the Arabic rendering (the answer model crashed: see above)"
            elif skipped:
                record["meta"] += f" · searched without the Arabic rendering ({skipped})"
        except RagError as exc:
            step.empty()
            if stream is None:  # failed before or during the search: nothing to show but the message
                record["error"] = str(exc)
            else:
                record["error"] = f"{exc} The passages retrieved for your question are below."
                record["cited"] = False
                ev = stream.evidence
                record["sources"] = [
                    citation_record(n, h.chunk, spans, retriever, also=h.also)
                    for n, (h, spans) in enumerate(zip(ev.hits, ev.highlights, strict=True), 1)
                ]
        st.session_state.messages.append(record)
    st.rerun()
