"""Follow-up questions: "And what did she say about weapons?" becomes a question that can be searched alone."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rag.answer.prompts import rewrite_messages
from rag.errors import LLMError
from rag.llm.client import ChatModel
from rag.llm.gate import OnWait
from rag.text.arabic import detect_language

log = logging.getLogger(__name__)

MAX_TURNS = 3  # the last turns the rewriter reads
_MAX_ANSWER_CHARS = 400


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished exchange of a conversation."""

    question: str
    answer: str


def standalone_question(
    question: str, history: tuple[Turn, ...], chat: ChatModel, on_wait: OnWait | None = None
) -> str:
    """The question rewritten with the last turns so it stands alone; the question itself when there is no
    history, or when the rewrite is unusable (empty, several lines, another language, far longer)."""
    question = question.strip()
    if not history:
        return question
    turns = [(t.question, t.answer[:_MAX_ANSWER_CHARS]) for t in history[-MAX_TURNS:]]
    try:
        reply = "".join(chat.stream(rewrite_messages(turns, question), on_wait)).strip()
    except LLMError as exc:
        log.warning("Could not rewrite the follow-up %r (%s); searching it as typed.", question, exc)
        return question
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    candidate = lines[0].strip('"“”«» ') if len(lines) == 1 else ""
    if (
        not candidate
        or detect_language(candidate) != detect_language(question)
        or len(candidate) > 3 * len(question) + 80
    ):
        log.info("Unusable rewrite %r of %r; searching it as typed.", reply, question)
        return question
    return candidate
