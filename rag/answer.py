"""Answering: retrieve, prompt, stream the reply, parse its [n] citations back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace

from .config import Settings
from .followup import Turn, standalone_question
from .llm import ChatModel
from .prompts import REFUSALS, build_messages, detect_language
from .retrieval import Retriever
from .types import Answer, Citation, Evidence
from .verify import CitationVerifier

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
    """Streams one answer; `answer` holds the finished Answer after iteration.

    The answer is the refusal phrase, without asking the model, when no passage scores `refuse_below` or more
    (dense cosine): the articles are not about the question. Otherwise the model answers from the passages and
    may abstain; each citation is then checked by the verifier, when there is one.
    """

    def __init__(
        self,
        evidence: Evidence,
        chat: ChatModel,
        verifier: CitationVerifier | None = None,
        refuse_below: float = 0.0,
        asked: str | None = None,
    ) -> None:
        self.evidence = evidence
        self.chat = chat
        self.verifier = verifier
        self.refuse_below = refuse_below
        self.asked = asked or evidence.question
        self._parts: list[str] = []
        self._answer: Answer | None = None
        self._t0 = time.perf_counter()

    @property
    def off_topic(self) -> bool:
        """True when no retrieved passage is close enough to the question to hold its answer."""
        hits = self.evidence.hits
        return not hits or max(h.dense for h in hits) < self.refuse_below

    def __iter__(self) -> Iterator[str]:
        if self.off_topic:
            refusal = REFUSALS[detect_language(self.asked)]
            self._parts.append(refusal)
            yield refusal
            self._answer = self._finish(refusal, refused_by="retrieval")
            return
        for delta in self.chat.stream(build_messages(self.evidence.question, list(self.evidence.passages))):
            self._parts.append(delta)
            yield delta
        self._answer = self._finish("".join(self._parts))

    def _finish(self, raw: str, refused_by: str | None = None) -> Answer:
        ev = self.evidence
        text, numbers = parse_citations(raw, len(ev.hits))
        # A refusal with stray citations is still a refusal when it leads the reply.
        refused = is_refusal(text) and (not numbers or any(text.startswith(r) for r in REFUSALS.values()))
        citations: tuple[Citation, ...] = ()
        if not refused:
            citations = tuple(
                Citation(n=n, chunk=ev.hits[n - 1].chunk, highlights=ev.highlights[n - 1]) for n in numbers
            )
            if self.verifier is not None:
                citations = self._verified(text, citations)
        return Answer(
            question=self.asked,
            text=text,
            refused=refused,
            citations=citations,
            hits=ev.hits,
            model="" if refused_by == "retrieval" else self.chat.name,
            seconds=time.perf_counter() - self._t0,
            standalone=ev.question if ev.question != self.asked else None,
            refused_by=(refused_by or "model") if refused else None,
        )

    def _verified(self, text: str, citations: tuple[Citation, ...]) -> tuple[Citation, ...]:
        """The citations with their support; each highlights its best-matching sentence."""
        assert self.verifier is not None
        found = self.verifier.verify(text, {c.n: c.chunk for c in citations}, {c.n: c.highlights for c in citations})
        out = []
        for c in citations:
            s = found.get(c.n)
            if s is None:
                out.append(replace(c, supported=False, reason="no sentence of the answer cites it"))
            else:
                out.append(
                    replace(
                        c, highlights=(s.span,), supported=s.supported, quote=s.quote, support=s.score, reason=s.reason
                    )
                )
        return tuple(out)

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


def ask(
    question: str,
    retriever: Retriever,
    chat: ChatModel,
    k: int = 3,
    sentences: int = 2,
    *,
    verifier: CitationVerifier | None = None,
    refuse_below: float = 0.0,
    history: tuple[Turn, ...] = (),
) -> AnswerStream:
    """Retrieve passages for the question (a follow-up is first made standalone) and start streaming the answer."""
    standalone = standalone_question(question, history, chat) if history else question
    return AnswerStream(gather_evidence(standalone, retriever, k, sentences), chat, verifier, refuse_below, question)


def verifier_for(retriever: Retriever, settings: Settings) -> CitationVerifier | None:
    """The settings' citation verifier over the retriever's index and model (None when turned off)."""
    if not settings.verify_citations:
        return None
    return CitationVerifier(retriever.index, retriever.embedder, settings.support_floor, settings.support_margin)


def ask_with(
    settings: Settings, question: str, retriever: Retriever, chat: ChatModel, history: tuple[Turn, ...] = ()
) -> AnswerStream:
    """`ask` with the settings' passages, sentences, refusal threshold and verifier."""
    return ask(
        question,
        retriever,
        chat,
        settings.answer_k,
        settings.context_sentences,
        verifier=verifier_for(retriever, settings),
        refuse_below=settings.refuse_below,
        history=history,
    )
