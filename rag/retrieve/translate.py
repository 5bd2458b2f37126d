"""Query translation: an Arabic rendering of an English question, for the lexical leg and a second dense query."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import LLMCrashedError, LLMTimeoutError, RagError
from rag.llm import client
from rag.llm.client import ChatModel
from rag.llm.gate import ModelBusyError
from rag.text.arabic import detect_language, has_arabic

log = logging.getLogger(__name__)

_CYRILLIC_WORD = re.compile("\\S*[\u0400-\u04ff]\\S*")  # the 1.5B model slips in "сколько" for "how many"

# Two worked examples keep the 1.5B model translating instead of answering.
TRANSLATE_MESSAGES = [
    {
        "role": "system",
        "content": "You are a translator from English to Arabic. You never answer questions; you only translate "
        "them word for word into Arabic, keeping it a question. Write names in Arabic letters.",
    },
    {"role": "user", "content": "Translate: Who won the election in 1990?"},
    {"role": "assistant", "content": "من فاز في الانتخابات عام 1990؟"},
    {"role": "user", "content": "Translate: What did Joe Biden say about the dam?"},
    {"role": "assistant", "content": "ماذا قال جو بايدن عن السد؟"},
]


def translation_messages(question: str) -> list[dict[str, str]]:
    """The chat messages asking for an Arabic rendering of an English question."""
    return [*TRANSLATE_MESSAGES, {"role": "user", "content": f"Translate: {question}"}]


@dataclass(frozen=True, slots=True)
class Rendering:
    """An English question's Arabic rendering, or why there is none this time (`skipped`: the model was busy,
    failed or timed out; None when no rendering was wanted, e.g. an Arabic question)."""

    arabic: str | None = None
    skipped: str | None = None


class QueryTranslator:
    """Arabic renderings of English questions from the answer model, cached on disk (one JSON line each)."""

    def __init__(
        self,
        connect: Callable[[], ChatModel],
        model: str,
        cache_file: Path | None = None,
        pause_after_failure: float = 60.0,
    ) -> None:
        self.connect = connect  # called at the first question that needs the model (it may start a server)
        self.model = model
        self.cache_file = cache_file
        self.pause_after_failure = pause_after_failure  # seconds without asking a model that just failed
        self._paused_until = 0.0
        self._chat: ChatModel | None = None
        self._cache: dict[str, str] = {}  # question -> its rendering ("" when the model made none)
        self._lock = threading.Lock()  # page sessions share one translator; the model call itself runs unlocked
        if cache_file is not None and cache_file.exists():
            for line in cache_file.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    if row.get("model") == model:
                        self._cache[row["q"]] = row["ar"]
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a torn line from a killed process: ignore it

    def arabic(self, question: str) -> str | None:
        """The question in Arabic, or None when it is not English or the model cannot be reached."""
        return self.render(question).arabic

    def render(self, question: str) -> Rendering:
        """The question's Arabic rendering, or why it has none this time (a search goes on without it)."""
        question = question.strip()
        if detect_language(question) != "en":
            return Rendering()
        with self._lock:
            if question in self._cache:
                return Rendering(self._cache[question] or None)
            if time.monotonic() < self._paused_until:  # the model failed moments ago: don't make every search wait
                return Rendering(skipped="the answer model failed moments ago")
        try:
            with self._lock:
                self._chat = chat = self._chat or self.connect()
            raw = "".join(chat.stream(translation_messages(question)))
        except ModelBusyError:  # a search never queues behind answers: it goes on without the rendering
            return Rendering(skipped="the answer model was busy with another question")
        except RagError as exc:  # retrieval goes on without the translation
            log.warning("Query translation skipped for %.0f s: %s", self.pause_after_failure, exc)
            with self._lock:
                if not (isinstance(exc, LLMCrashedError) and exc.restarted):  # a restarted server can be asked now
                    self._paused_until = time.monotonic() + self.pause_after_failure
            if isinstance(exc, LLMCrashedError):
                return Rendering(skipped=str(exc))  # say what happened, not "could not be reached"
            why = "did not answer in time" if isinstance(exc, LLMTimeoutError) else "could not be reached"
            return Rendering(skipped=f"the answer model {why}")
        first_line = raw.strip().splitlines()[0] if raw.strip() else ""
        text = " ".join(_CYRILLIC_WORD.sub(" ", first_line).split())
        rendering = text if has_arabic(text) else ""
        with self._lock:
            self._remember(question, rendering, chat.name)
        return Rendering(rendering or None)

    def _remember(self, question: str, rendering: str, model: str) -> None:
        """Keep the rendering; on disk only a real one, under the name of the model that made it."""
        self._cache[question] = rendering
        if self.cache_file is None or not rendering:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"model": model, "q": question, "ar": rendering}, ensure_ascii=False) + "\n"
        fd = os.open(self.cache_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))  # one append per line: concurrent writers do not interleave
        finally:
            os.close(fd)


def make_translator(settings: Settings) -> QueryTranslator | None:
    """The configured query translator (None when RAG_TRANSLATE_QUERIES is off); connects on first use."""
    if not settings.translate_queries:
        return None
    # Its own short timeout, no retries, and no queueing: a search never waits for answers to finish.
    quick = settings.model_copy(update={"llm_timeout": settings.translate_timeout, "llm_retries": 0})
    return QueryTranslator(
        lambda: client.make_chat_model(quick, queue_timeout=0.0),
        settings.answer_model,
        settings.cache / "query-translations.jsonl",
    )
