"""The answer pipeline: one path from a question to a cited answer, for the page, `rag ask`, `rag chat` and eval.

Steps: rewrite a follow-up into a standalone question, retrieve passages, pick key quotes, then answer
- in **quote** mode with the key quote(s) verbatim (nothing a model wrote is presented as fact), or
- in **generate** mode with the answer model's streamed reply, its [n] citations verified, the key quotes kept
  beside it, and the best quote offered as the "closest passage" when the model abstains.
Every answer gets an outcome from the answerability estimate (rag/answer/answerable.py), in both modes: "answer"
(confident), "closest" (the articles may not answer: the closest passages, never styled as an answer) or "refused".
An off-topic question (no passage close enough), one naming a place no retrieved article mentions, and one whose
estimate is under `closest_min` are refused before any model is asked; in generate mode an answer whose estimate
is under `answer_min` keeps the closest-passage framing unless every citation is verified.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from rag.answer.answerable import Assessment, Calibration, assess, missing_words, signals_of
from rag.answer.outlets import side_by_side
from rag.answer.prompts import REFUSALS, build_messages, not_mentioned, quote_intro
from rag.answer.quotes import QuotePicker
from rag.answer.timeline import timeline_answer
from rag.answer.verify import CitationVerifier, misattributed
from rag.attribute.said import said_followup
from rag.config import Settings
from rag.llm.client import ChatModel, LazyChat
from rag.llm.gate import OnWait
from rag.retrieve.followup import MAX_TURNS, Turn, reads_as_followup, standalone_question
from rag.retrieve.retriever import Retriever
from rag.text.arabic import ascii_digits, detect_language
from rag.text.names import NameMatcher, places_in
from rag.types import Answer, Article, Citation, Evidence, Filter, KeyQuote

_CITATION = re.compile(r"\[([0-9٠-٩۰-۹][0-9٠-٩۰-۹,،\s]*)\]")
MODES = ("auto", "quote", "generate")

OnStep = Callable[[str], None]  # told the name of each step as it starts: rewrite, search, quotes, answer, verify


@dataclass(frozen=True, slots=True)
class AnswerRules:
    """The settings' answer group (`AnswerRules.of`): k passages, the `sentences` of each the model reads, the
    mode, and the thresholds: `refuse_below` (the best passage's dense score under which a question is off-topic),
    `answer_min` and `closest_min` (the answerability estimate's tiers), and how many key quotes an answer shows
    (`quote_count`, those within `quote_margin` of the best)."""

    k: int = 3
    sentences: int = 2
    mode: str = "generate"
    refuse_below: float = 0.0
    answer_min: float = 0.0
    closest_min: float = 0.0
    quote_count: int = 1
    quote_margin: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> AnswerRules:
        return cls(
            k=settings.answer_k,
            sentences=settings.context_sentences,
            mode=resolve_mode(settings),
            refuse_below=settings.refuse_below,
            answer_min=settings.answer_confidence,
            closest_min=settings.closest_confidence,
            quote_count=settings.quote_count,
            quote_margin=settings.quote_margin,
        )


@dataclass(frozen=True, slots=True)
class AnswerTools:
    """The steps besides the model, each optional: the citation verifier, the key-quote picker (no picker: no key
    quotes and no estimate) and the answerability calibrations (None: the fitted ones)."""

    verifier: CitationVerifier | None = None
    picker: QuotePicker | None = None
    calibrations: Mapping[str, Calibration] | None = None


@dataclass(frozen=True, slots=True)
class Hooks:
    """Who hears of an answer's progress: `on_step` each step's name as it starts, `on_wait` how many questions
    are ahead while this one queues for the answer model (then 0 when its turn comes)."""

    on_step: OnStep | None = None
    on_wait: OnWait | None = None


@dataclass(frozen=True, slots=True)
class Findings:
    """What the pipeline found before answering: the question as asked (None: as searched), the key quotes, the
    estimate that the best one answers (None: no key quotes), the places the question names that no retrieved
    article mentions, and for a who-said-what question (rag/answer/timeline.py) how its statements are shown."""

    asked: str | None = None
    quotes: tuple[KeyQuote, ...] = ()
    assessment: Assessment | None = None
    unmentioned: tuple[str, ...] = ()
    intro: str | None = None  # a quote answer's first line (None: the usual one)
    speakers: tuple[str, ...] = ()  # a who-said-what answer: the key quotes are these speakers' statements, all shown
    outlets: tuple[str, ...] = ()  # a question naming outlets: the key quotes are each one's best, all shown


def parse_citations(text: str, n_passages: int) -> tuple[str, list[int]]:
    """Citation numbers in order of first use, and the text with numbers that match no passage removed."""
    used: list[int] = []

    def keep(match: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"[,،\s]+", ascii_digits(match.group(1))) if x]
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


def render_quotes(
    question: str,
    quotes: tuple[KeyQuote, ...],
    articles: Mapping[str, Article],
    outcome: str = "answer",
    intro: str | None = None,
) -> str:
    """The quote answer (or, for the "closest" outcome, the closest passages): one line in the question's language
    (`intro`, else the usual one), then each quote verbatim with its [n], outlet and date ("(Al Jazeera,
    2023-03-21)", what is known of them)."""
    lines = [intro or quote_intro(detect_language(question), outcome), ""]
    for q in quotes:
        article = articles.get(q.chunk.article_id)
        about = [v for v in (article.outlet, (article.published or "")[:10]) if v] if article else []
        lines.append(f"> {q.text} [{q.n}]" + (f" ({', '.join(about)})" if about else ""))
    return "\n".join(lines)


class AnswerStream:
    """Streams one answer; `answer` holds the finished Answer after iteration (see the module docstring)."""

    def __init__(
        self,
        evidence: Evidence,
        chat: ChatModel,
        rules: AnswerRules | None = None,
        findings: Findings | None = None,
        *,
        verifier: CitationVerifier | None = None,
        articles: Mapping[str, Article] | None = None,
        hooks: Hooks | None = None,
        started: float | None = None,
    ) -> None:
        found = findings or Findings()
        self.evidence = evidence
        self.chat = chat
        self.rules = rules or AnswerRules()
        self.verifier = verifier
        self.asked = found.asked or evidence.question
        self.mode = self.rules.mode
        self.quotes = found.quotes
        self.assessment = found.assessment  # how likely the best key quote answers (None: no key quotes)
        self.unmentioned = found.unmentioned  # places the question names that no retrieved article mentions
        self.findings = found
        self.articles = articles or {}  # for the outlets named in a quote answer
        hooks = hooks or Hooks()
        self.on_step = hooks.on_step or (lambda step: None)
        self.on_wait = hooks.on_wait  # told how many questions are ahead while this one queues for the answer model
        self._parts: list[str] = []
        self._answer: Answer | None = None
        self._t0 = time.perf_counter() if started is None else started  # when the question was asked
        self._first_text: float | None = None
        self._queued_at: float | None = None
        self._waited = 0.0

    def _waiting(self, ahead: int) -> None:
        """Times the wait for the answer model and passes the news on."""
        now = time.perf_counter()
        if ahead and self._queued_at is None:
            self._queued_at = now
        elif not ahead and self._queued_at is not None:
            self._waited += now - self._queued_at
            self._queued_at = None
        if self.on_wait is not None:
            self.on_wait(ahead)

    @property
    def off_topic(self) -> bool:
        """True when no retrieved passage is close enough to the question to hold its answer."""
        hits = self.evidence.hits
        return not hits or max(h.dense for h in hits) < self.rules.refuse_below

    @property
    def tier(self) -> str:
        """What the estimate allows: "answer", "closest" or "refused" ("answer" when nothing was estimated: no
        key-quote picker)."""
        if self.assessment is None:
            return "answer"
        return self.assessment.outcome(self.rules.answer_min, self.rules.closest_min)

    @property
    def strong_quotes(self) -> tuple[KeyQuote, ...]:
        """The key quotes shown: for an answer the best and the next ones within the margin of it; as the
        closest passages the best three; none under the closest threshold."""
        tier, count = self.tier, self.rules.quote_count
        if tier == "refused" or not self.quotes:
            return ()
        if self.findings.speakers or self.findings.outlets:  # a speaker's statements, or each outlet's best
            return self.quotes
        if tier == "closest":
            return self.quotes[: max(3, count)]
        top = self.quotes[0].score
        return tuple(q for q in self.quotes[:count] if q.score >= max(top - self.rules.quote_margin, 0.0))

    def __iter__(self) -> Iterator[str]:
        refusal = REFUSALS[detect_language(self.asked)]
        if self.off_topic:
            yield from self._say(refusal)
            self._answer = self._finish(refusal, refused_by="retrieval")
            return
        if self.unmentioned:  # "What did Mao Ning say about Taiwan?" over articles that never name Taiwan
            text = f"{refusal} {not_mentioned(detect_language(self.asked), self.unmentioned)}"
            yield from self._say(text)
            self._answer = self._finish(text, refused_by="names")
            return
        if self.tier == "refused":  # in both modes: no answer model is asked
            text = f"{refusal} {self._missing()}".strip()
            yield from self._say(text)
            self._answer = self._finish(text, refused_by="confidence")
            return
        if self.mode == "quote":
            quotes, tier = self.strong_quotes, self.tier
            if not quotes:
                yield from self._say(refusal)
                self._answer = self._finish(refusal, refused_by="confidence")
                return
            text = render_quotes(self.asked, quotes, self.articles, tier, self.findings.intro)
            yield from self._say(text)
            self._answer = self._quoted(text, quotes, tier)
            return
        self.on_step("answer")
        about = [self.articles.get(h.chunk.article_id) for h in self.evidence.hits]
        messages = build_messages(
            self.evidence.question,
            list(self.evidence.passages),
            [(a.outlet, a.published) if a else (None, None) for a in about],
        )
        for delta in self.chat.stream(messages, self._waiting):
            self._said()
            self._parts.append(delta)
            yield delta
        self._answer = self._finish("".join(self._parts))

    def _missing(self) -> str:
        """What the passages found do not mention of the question (its Arabic words, of the rendering for an
        English question), as a sentence in the question's language; "" when they mention every word."""
        ev = self.evidence
        arabic = ev.question if detect_language(ev.question) == "ar" else ev.translation or ""
        words = missing_words(arabic, " ".join(h.chunk.text for h in ev.hits))
        return not_mentioned(detect_language(self.asked), tuple(f"«{w}»" for w in words)) if words else ""

    def _say(self, text: str) -> Iterator[str]:
        self._said()
        self._parts.append(text)
        yield text

    def _said(self) -> None:
        if self._first_text is None:
            self._first_text = time.perf_counter() - self._t0

    def _quoted(self, text: str, quotes: tuple[KeyQuote, ...], outcome: str) -> Answer:
        """A quote answer: each quote is its own citation, supported by being the passage's own words (the closest
        passages are not marked supported: they may not answer)."""
        citations = tuple(
            Citation(
                n=q.n,
                chunk=q.chunk,
                highlights=(q.focus,),
                supported=True if outcome == "answer" else None,
                quote=q.text,
                support=q.score,
                also=self.evidence.hits[q.n - 1].also,
            )
            for q in quotes
        )
        return self._answer_of(text, refused=False, citations=citations, model="", outcome=outcome)

    def _finish(self, raw: str, refused_by: str | None = None) -> Answer:
        ev = self.evidence
        text, numbers = parse_citations(raw, len(ev.hits))
        # A refusal with stray citations is still a refusal when it leads the reply.
        refused = is_refusal(text) and (not numbers or any(text.startswith(r) for r in REFUSALS.values()))
        citations: tuple[Citation, ...] = ()
        if not refused:
            citations = tuple(
                Citation(n=n, chunk=ev.hits[n - 1].chunk, highlights=ev.highlights[n - 1], also=ev.hits[n - 1].also)
                for n in numbers
            )
            if self.verifier is not None:
                self.on_step("verify")
                citations = self._verified(text, citations)
        closest, outcome = None, "refused" if refused else "answer"
        if refused and refused_by is None and self.quotes:  # the model abstained: show the closest passage
            closest, outcome = self.quotes[0], "closest"
        elif not refused and self.tier == "closest":  # uncertain: an answer only when every citation is verified
            verified = bool(citations) and all(c.supported for c in citations)
            outcome = "answer" if verified else "closest"
        return self._answer_of(
            text,
            refused=outcome == "refused",
            citations=citations,
            model="" if refused_by in ("retrieval", "confidence", "names") else self.chat.name,
            refused_by=(refused_by or "model") if refused else None,
            closest=closest,
            outcome=outcome,
        )

    def _answer_of(self, text: str, *, refused: bool, citations: tuple[Citation, ...], model: str, **extra) -> Answer:  # type: ignore[no-untyped-def]
        ev = self.evidence
        return Answer(
            question=self.asked,
            text=text,
            refused=refused,
            citations=citations,
            hits=ev.hits,
            model=model,
            seconds=time.perf_counter() - self._t0,
            standalone=ev.question if ev.question != self.asked else None,
            mode=self.mode,
            key_quotes=() if self.off_topic else self.quotes,
            search_seconds=ev.search_seconds,
            first_text_seconds=self._first_text,
            waited_seconds=self._waited,
            confidence=self.assessment.confidence if self.assessment is not None and not self.off_topic else None,
            signals=tuple(self.assessment.signals.as_json().items()) if self.assessment is not None else (),
            speakers=self.findings.speakers,
            **extra,
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
        # "According to the BBC, … [2]": passage 2 must come from the BBC (or be carried by it too)
        carried = {c.n: self._outlets_of(c) for c in out}
        wrong = misattributed(text, carried, self.verifier.index.records.outlets())
        return tuple(replace(c, supported=False, reason=wrong[c.n]) if c.n in wrong else c for c in out)

    def _outlets_of(self, c: Citation) -> list[str]:
        """The outlets of a cited passage's article and of the articles carrying the same passage."""
        ids = (c.chunk.article_id, *c.also)
        return [a.outlet for a in (self.articles.get(i) for i in ids) if a is not None and a.outlet]

    @property
    def answer(self) -> Answer:
        """The finished answer (consumes the rest of the stream if needed)."""
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None
        return self._answer


def gather_evidence(
    question: str, retriever: Retriever, k: int = 3, sentences: int = 2, scope: Filter | None = None
) -> Evidence:
    """Retrieve k passages for the question (from the articles `scope` keeps); the model will read `sentences`
    sentences of each."""
    t0 = time.perf_counter()
    query = retriever.query(question, scope)
    hits = retriever.search(query, k)
    passages, highlights = retriever.read(query, hits, sentences)
    return Evidence(
        question=query.text,
        hits=tuple(hits),
        passages=tuple(passages),
        highlights=tuple(highlights),
        query=query,
        search_seconds=time.perf_counter() - t0,
    )


def ask(
    question: str,
    retriever: Retriever,
    chat: ChatModel,
    rules: AnswerRules | None = None,
    *,
    tools: AnswerTools | None = None,
    history: tuple[Turn, ...] = (),
    scope: Filter | None = None,
    hooks: Hooks | None = None,
) -> AnswerStream:
    """Rewrite a follow-up, retrieve passages (from the articles `scope` keeps), pick key quotes, and start
    streaming the answer (`hooks` hear each step and the wait for the answer model)."""
    started = time.perf_counter()
    rules, tools, hooks = rules or AnswerRules(), tools or AnswerTools(), hooks or Hooks()
    step = hooks.on_step or (lambda name: None)
    question = question.strip()
    # "What else did she say?" after a who-said question (the latest among the turns the rewriter would read): the
    # speaker put back by rule, no model asked
    again = next(filter(None, (said_followup(question, t.question) for t in reversed(history[-MAX_TURNS:]))), None)
    if again is None and history and reads_as_followup(question):
        step("rewrite")
    standalone = again or (standalone_question(question, history, chat, hooks.on_wait) if history else question)
    step("search")
    said = timeline_answer(standalone, question, retriever, scope)
    if said is not None:  # "What did Mao Ning say about ...?": her statements about it, by date
        findings = Findings(question, said.quotes, None, (), said.intro, said.timeline.speakers)
        return AnswerStream(
            said.evidence,
            chat,
            rules,
            findings,
            verifier=tools.verifier,
            articles=retriever.index.articles,
            hooks=hooks,
            started=started,
        )
    picker = tools.picker
    # "How did Al Jazeera and the BBC report …?": each outlet's best quote, side by side
    side = side_by_side(standalone, retriever, picker, gather_evidence, rules.sentences, scope)
    evidence = side.evidence if side else gather_evidence(standalone, retriever, rules.k, rules.sentences, scope)
    quotes: tuple[KeyQuote, ...] = ()
    articles = retriever.index.articles
    matcher = NameMatcher()
    assessment = None
    if picker is not None and evidence.hits and evidence.query is not None:
        step("quotes")
        query = evidence.query
        quotes = side.quotes if side else tuple(picker.pick(query, evidence.hits, count=3))
        ranked = tuple(sorted(quotes, key=lambda q: -q.score))  # the estimate reads the best quote first
        signals = signals_of(
            query.text, query.rendering, evidence.hits, ranked, articles, picker.coverage_of(query), matcher
        )
        assessment = assess(signals, standalone, tools.calibrations) if quotes else None
    texts = [articles[a].text for a in dict.fromkeys(h.chunk.article_id for h in evidence.hits) if a in articles]
    unmentioned = tuple(
        p.text for p in places_in(standalone) if texts and not any(matcher.mentions(p, t) for t in texts)
    )
    findings = Findings(question, quotes, assessment, unmentioned, outlets=side.outlets if side else ())
    return AnswerStream(
        evidence, chat, rules, findings, verifier=tools.verifier, articles=articles, hooks=hooks, started=started
    )


def resolve_mode(settings: Settings) -> str:
    """`auto` is `quote` with the embedded model (it cannot read Arabic reliably) and `generate` with an endpoint."""
    if settings.answer_mode != "auto":
        return settings.answer_mode
    return "quote" if settings.uses_embedded_llm else "generate"


def verifier_for(retriever: Retriever, settings: Settings) -> CitationVerifier | None:
    """The settings' citation verifier over the retriever's index and model (None when turned off)."""
    if not settings.verify_citations:
        return None
    return CitationVerifier(retriever.index, retriever.embedder, settings.support_floor, settings.support_margin)


def picker_for(retriever: Retriever, settings: Settings) -> QuotePicker:
    """The key-quote picker over the retriever (its weights are fitted constants, rag/answer/quotes.py)."""
    return QuotePicker(retriever.index, retriever.bm25)


class AnswerPipeline:
    """The settings' pipeline over one retriever: what the page, `rag ask`, `rag chat` and `rag eval` call.

    The answer model is connected lazily (`connect`), so a quote answer never starts it unless a follow-up
    needs rewriting.
    """

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        chat: ChatModel | Callable[[], ChatModel],
        calibrations: Mapping[str, Calibration] | None = None,
    ) -> None:
        self.settings = settings
        self.calibrations = calibrations  # the answerability models (None: the fitted ones)
        self.retriever = retriever
        self.chat: ChatModel = (
            chat  # type: ignore[assignment]
            if hasattr(chat, "stream")
            else LazyChat(chat, settings.answer_model, settings.answer_base_url or "")  # type: ignore[arg-type]
        )
        self.verifier = verifier_for(retriever, settings)
        self.picker = picker_for(retriever, settings)
        self.rules = AnswerRules.of(settings)
        self.mode = self.rules.mode

    def over(self, retriever: Retriever) -> AnswerPipeline:
        """The same pipeline over another retriever (a new index version), sharing the answer model."""
        return AnswerPipeline(self.settings, retriever, self.chat, self.calibrations)

    def ask(
        self,
        question: str,
        history: tuple[Turn, ...] = (),
        *,
        k: int | None = None,
        on_step: OnStep | None = None,
        on_wait: OnWait | None = None,
        scope: Filter | None = None,
    ) -> AnswerStream:
        """Start answering `question` (with the conversation so far) from the articles `scope` keeps (all by
        default); iterate the stream for the text."""
        rules = replace(self.rules, k=k) if k else self.rules
        tools = AnswerTools(self.verifier, self.picker, self.calibrations)
        hooks = Hooks(on_step, on_wait)
        return ask(question, self.retriever, self.chat, rules, tools=tools, history=history, scope=scope, hooks=hooks)


def ask_with(
    settings: Settings, question: str, retriever: Retriever, chat: ChatModel, history: tuple[Turn, ...] = ()
) -> AnswerStream:
    """`AnswerPipeline(settings, retriever, chat).ask(question, history)`."""
    return AnswerPipeline(settings, retriever, chat).ask(question, history)
