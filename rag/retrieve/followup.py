"""Follow-up questions: "And what did she say about weapons?" becomes a question that can be searched alone."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from rag.errors import LLMError
from rag.llm.client import ChatModel
from rag.llm.gate import OnWait
from rag.text.arabic import detect_language

log = logging.getLogger(__name__)

MAX_TURNS = 3  # the last turns the rewriter reads
_MAX_ANSWER_CHARS = 400

# Follow-up questions: rewritten with the conversation into a question that stands on its own.
REWRITE_SYSTEM = (
    "You rewrite the last question of a conversation about news articles so that it can be understood on its own. "
    "Replace pronouns (he, she, it, they, هو، هي، هم) and vague references with the people and topics they stand "
    "for, taken from the conversation. Keep the language of the last question. If it is already clear on its own, "
    "repeat it unchanged. Reply with the rewritten question only."
)
# Arabic example first: with it last, the 1.5B model answered English follow-ups in Arabic (measured).
REWRITE_EXAMPLES = [
    (
        [("ماذا قال وزير الخارجية عن السد؟", "قال إن السد سينتهي في 2025 [1].")],
        "وماذا قال عن تكلفته؟",
        "ماذا قال وزير الخارجية عن تكلفة السد؟",
    ),
    (
        [("What did Joe Biden say about the dam?", "He said it would be finished in 2025 [1].")],
        "And what did he say about its cost?",
        "What did Joe Biden say about the cost of the dam?",
    ),
]


def _conversation(turns: list[tuple[str, str]], question: str) -> str:
    past = "\n".join(f"Question: {q}\nAnswer: {a}" for q, a in turns)
    return f"Conversation:\n{past}\n\nLast question: {question}"


def rewrite_messages(turns: list[tuple[str, str]], question: str) -> list[dict[str, str]]:
    """The chat messages asking for a standalone version of a follow-up question."""
    messages = [{"role": "system", "content": REWRITE_SYSTEM}]
    for past, asked, rewritten in REWRITE_EXAMPLES:
        messages += [
            {"role": "user", "content": _conversation(past, asked)},
            {"role": "assistant", "content": rewritten},
        ]
    return [*messages, {"role": "user", "content": _conversation(turns, question)}]


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished exchange of a conversation."""

    question: str
    answer: str


# What makes a question lean on the conversation: it starts by continuing it ("And …", "What about …", "وماذا …"),
# or names someone or something only by a pronoun or a pointing word ("she", "that", "there", "هذا", "عنها").
_EN_REFERS = frozenset(
    """he she it they him her them his hers its their theirs this that these those there then same such else
    other another former latter again also too earlier above previous""".split()
)
_EN_OPENERS = ("and ", "but ", "so ", "also ", "what about", "how about", "and?", "why not", "then ")
_AR_REFERS = frozenset(
    """هو هي هم هما هن هذا هذه ذلك تلك هؤلاء أولئك ذاك هناك هنالك أيضا أيضاً كذلك نفسه نفسها نفسهم الآخر الأخرى
    عنه عنها عنهم عنهما منه منها منهم له لها لهم لهما فيه فيها فيهم إليه إليها إليهم عليه عليها عليهم معه معها معهم
    معهما به بها بهم قاله قالته قالها قالوه بينهما حينها وقتها عندها""".split()
)
_AR_OPENERS = ("وماذا", "وما ", "ومن ", "وأين", "ومتى", "وكيف", "ولماذا", "وهل", "وكم", "وأي", "ماذا عن", "ثم ")
_AR_COPULA = frozenset({"هو", "هي", "هم"})  # "من هو وزير الخارجية؟" (who is …): no pronoun to resolve
_AR_ASKING = frozenset({"من", "ما", "ماذا", "ومن", "وما"})
_WORD = re.compile(r"[\w\u0600-\u06ff']+")


def reads_as_followup(question: str) -> bool:
    """True when `question` may lean on the conversation, so it is rewritten before it is searched: it is short
    (three words or fewer), continues the last one ("And …?", "What about …?", "وماذا …؟") or refers by a pronoun or
    a pointing word ("she", "that", "there", "عنها", "ذلك"). A question that names what it asks about ("What is the
    population of Beijing?") is searched as typed: the rewrite would only cost the answer model's seconds, and it
    sometimes changes such a question (measured: scripts/bench_followup.py, docs/trust.md)."""
    text = " ".join(question.split()).casefold()
    words = _WORD.findall(text)
    if len(words) <= 3:
        return True
    if text.startswith(_EN_OPENERS) or text.startswith(_AR_OPENERS):
        return True
    return any(
        w in _EN_REFERS or (w in _AR_REFERS and not (w in _AR_COPULA and i and words[i - 1] in _AR_ASKING))
        for i, w in enumerate(words)
    )


def standalone_question(
    question: str, history: tuple[Turn, ...], chat: ChatModel, on_wait: OnWait | None = None
) -> str:
    """The question rewritten with the last turns so it stands alone; the question itself when there is no
    history, when it does not read as a follow-up (`reads_as_followup`: no model is asked), or when the rewrite is
    unusable (empty, several lines, another language, far longer)."""
    question = question.strip()
    if not history or not reads_as_followup(question):
        return question
    return rewrite(question, history, chat, on_wait)


def rewrite(question: str, history: tuple[Turn, ...], chat: ChatModel, on_wait: OnWait | None = None) -> str:
    """The answer model's rewrite of `question` with the last turns (whether or not it reads as a follow-up); the
    question itself when the rewrite is unusable."""
    question = question.strip()
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
