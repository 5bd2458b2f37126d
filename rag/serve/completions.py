"""The OpenAI-compatible face of the API (`POST /v1/chat/completions`, `GET /v1/models`): a conversation in the
OpenAI message format becomes a question and its history; the answer comes back as an assistant message whose text
carries [n] markers and a "Sources:" list, and whose `citations` field lists the cited passages (the official
`openai` client reads it as `completion.citations`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rag.errors import RagError
from rag.retrieve.followup import Turn
from rag.serve.answers import Finished
from rag.state.export import citation_line

MODEL = "rag-news"  # the model name the archive answers as (any name is accepted)


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of parts (images and files are ignored)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise RagError('A message\'s content must be a string or a list of parts such as {"type": "text", ...}.')


def conversation(messages: Sequence[Any]) -> tuple[str, tuple[Turn, ...]]:
    """The last user message as the question, and the user/assistant pairs before it as its history (system
    messages and tool calls are ignored)."""
    said = [(m.role, text_of(m.content).strip()) for m in messages if m.role in ("user", "assistant")]
    if not said or said[-1][0] != "user" or not said[-1][1]:
        raise RagError('The last message must be the user\'s question, with text: add {"role": "user", ...}.')
    turns, asked = [], None
    for role, text in said[:-1]:
        if role == "user":
            asked = text
        elif asked is not None and text:
            turns.append(Turn(asked, _without_sources(text)))
            asked = None
    return said[-1][1], tuple(turns)


SOURCES = "\n\nSources:\n"


def _without_sources(text: str) -> str:
    """An earlier answer of ours as the history reads it: without its "Sources:" list."""
    return text.split(SOURCES, 1)[0]


def sources_text(done: Finished) -> str:
    """The "Sources:" list under the answer: `[n] title · outlet · date · link` for each cited passage ("" when
    none is cited)."""
    lines = [citation_line(s) for s in done.view.sources] if done.view.mode else []
    return SOURCES + "\n".join(lines) if lines else ""


def extras(done: Finished) -> dict[str, Any]:
    """What the reply carries besides the OpenAI fields: the citations, and how the archive answered."""
    data = done.data
    return {
        "citations": data.get("citations", []),
        "rag": {
            key: data.get(key)
            for key in ("outcome", "mode", "confidence", "refused", "unsupported", "error", "chat", "key_quotes")
        },
    }


def completion(done: Finished, text: str, model: str) -> dict[str, Any]:
    """A `chat.completion` object with the answer and its citations."""
    content = text + sources_text(done)
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        **extras(done),
    }


def chunks(events: Iterator[tuple[str, Any]], model: str) -> Iterator[dict[str, Any]]:
    """`chat.completion.chunk` objects: the role, the answer's text as it streams, the "Sources:" list, then the
    last chunk with finish_reason "stop" and the citations."""
    ident, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [choice], **more}  # fmt: skip

    yield chunk({"role": "assistant", "content": ""})
    for kind, value in events:
        if kind == "text" and value:
            yield chunk({"content": value})
        elif kind == "done":
            if value.error:
                yield chunk({"content": f"\n\n{value.data['error']}"})
            if tail := sources_text(value):
                yield chunk({"content": tail})
            yield chunk({}, "stop", **extras(value))


def models() -> dict[str, Any]:
    """`GET /v1/models`: the one model the archive answers as."""
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "rag-news"}]}
