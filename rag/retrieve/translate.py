"""Query translation: an Arabic rendering of an English question, for the lexical leg and a second dense query."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from rag.answer.prompts import translation_messages
from rag.config import Settings
from rag.errors import LLMCrashedError, LLMTimeoutError, RagError
from rag.llm import client
from rag.llm.client import ChatModel
from rag.llm.gate import ModelBusyError
from rag.text.arabic import detect_language, has_arabic

log = logging.getLogger(__name__)

_CYRILLIC_WORD = re.compile("\\S*[\u0400-\u04ff]\\S*")  # the 1.5B model slips in "сколько" for "how many"


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
        self._cache: dict[str, str] = {}
        self._notes: OrderedDict[str, str] = OrderedDict()  # why a question got no rendering this time (busy...)
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
        question = question.strip()
        if detect_language(question) != "en":
            return None
        with self._lock:
            if question in self._cache:
                return self._cache[question] or None
            if time.monotonic() < self._paused_until:  # the model failed moments ago: don't make every search wait
                self._note(question, "the answer model failed moments ago")
                return None
        try:
            with self._lock:
                self._chat = chat = self._chat or self.connect()
            raw = "".join(chat.stream(translation_messages(question)))
        except ModelBusyError:  # a search never queues behind answers: it goes on without the rendering
            with self._lock:
                self._note(question, "the answer model was busy with another question")
            return None
        except RagError as exc:  # retrieval goes on without the translation
            log.warning("Query translation skipped for %.0f s: %s", self.pause_after_failure, exc)
            timed_out = isinstance(exc, LLMTimeoutError)
            with self._lock:
                if not (isinstance(exc, LLMCrashedError) and exc.restarted):  # a restarted server can be asked now
                    self._paused_until = time.monotonic() + self.pause_after_failure
                if isinstance(exc, LLMCrashedError):
                    self._note(question, str(exc))  # say what happened, not "could not be reached"
                else:
                    why = "did not answer in time" if timed_out else "could not be reached"
                    self._note(question, f"the answer model {why}")
            return None
        first_line = raw.strip().splitlines()[0] if raw.strip() else ""
        text = " ".join(_CYRILLIC_WORD.sub(" ", first_line).split())
        rendering = text if has_arabic(text) else ""
        with self._lock:
            self._notes.pop(question, None)
            self._remember(question, rendering, chat.name)
        return rendering or None

    def skipped(self, question: str) -> str | None:
        """Why the last `arabic(question)` found no rendering though one was wanted (None: it was not skipped)."""
        with self._lock:
            return self._notes.get(question.strip())

    def _note(self, question: str, why: str) -> None:
        """Remember why `question` went without a rendering (the newest 256 questions; call with the lock held)."""
        self._notes[question] = why
        self._notes.move_to_end(question)
        while len(self._notes) > 256:
            self._notes.popitem(last=False)

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
