"""Answering: retrieve, prompt, stream the reply, parse its [n] citations back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from .llm import ChatModel
from .prompts import REFUSALS, build_messages
from .retrieval import Retriever
from .types import Answer, Citation, Evidence

_CITATION = re.compile(r"\[([0-9٠-٩۰-۹][0-9٠-٩۰-۹,،\s]*)\]")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def parse_citations(text: str, n_passages: int) -> tuple[str, list[int]]:
    """Citation numbers in order of first use, and the text with numbers that match no passage removed."""
    used: list[int] = []

    def keep(match: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"[,،\s]+", match.group(1).translate(_DIGITS)) if x]
        valid = [n for n in nums if 1 <= n <= n_passages]
        for n in valid:
            if n not in used:
                used.append(n)
        return "".join(f"[{n}]" for n in valid)

    cleaned = _CITATION.sub(keep, text)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return re.sub(r"[ \t]+([.,،؟!])", r"\1", cleaned).strip(), used


def is_refusal(text: str) -> bool:
    """True when the answer is the refusal phrase (in either language)."""
    flat = re.sub(r"[\s.。]+", " ", text).strip().lower()
    return any(re.sub(r"[\s.]+", " ", r).strip().lower() in flat for r in REFUSALS.values())


class AnswerStream:
    """Streams one answer; `answer` holds the finished Answer after iteration."""

    def __init__(self, evidence: Evidence, chat: ChatModel) -> None:
        self.evidence = evidence
        self.chat = chat
        self._parts: list[str] = []
        self._answer: Answer | None = None
        self._t0 = time.perf_counter()

    def __iter__(self) -> Iterator[str]:
        for delta in self.chat.stream(build_messages(self.evidence.question, list(self.evidence.passages))):
            self._parts.append(delta)
            yield delta
        self._answer = self._finish("".join(self._parts))

    def _finish(self, raw: str) -> Answer:
        ev = self.evidence
        text, numbers = parse_citations(raw, len(ev.hits))
        # A refusal with stray citations is still a refusal when it leads the reply.
        refused = is_refusal(text) and (not numbers or any(text.startswith(r) for r in REFUSALS.values()))
        citations = (
            ()
            if refused
            else tuple(Citation(n=n, chunk=ev.hits[n - 1].chunk, highlights=ev.highlights[n - 1]) for n in numbers)
        )
        return Answer(
            question=ev.question,
            text=text,
            refused=refused,
            citations=citations,
            hits=ev.hits,
            model=self.chat.name,
            seconds=time.perf_counter() - self._t0,
        )

    @property
    def answer(self) -> Answer:
        """The finished answer (consumes the rest of the stream if needed)."""
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None
        return self._answer


def gather_evidence(question: str, retriever: Retriever, k: int = 3, sentences: int = 2) -> Evidence:
    """Retrieve k passages for the question; the model will read `sentences` sentences of each."""
    hits = retriever.search(question, k)
    passages, highlights = retriever.read(question, hits, sentences)
    return Evidence(
        question=question,
        hits=tuple(hits),
        passages=tuple(passages),
        highlights=tuple(highlights),
        translation=retriever.translation(question),
    )


def ask(question: str, retriever: Retriever, chat: ChatModel, k: int = 3, sentences: int = 2) -> AnswerStream:
    """Retrieve passages for the question and start streaming the answer."""
    return AnswerStream(gather_evidence(question, retriever, k, sentences), chat)
