"""`rag chat`: questions one after another on standard input, follow-ups kept in the thread, the slash commands
(/sources, /filter, /new, /quit), and the index picked up again when a build or update switches versions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import typer

from rag.answer.view import AnswerView, answer_view, retrieved_view
from rag.cli import show
from rag.config import Settings
from rag.errors import LLMError, RagError
from rag.index.versions import live_version
from rag.retrieve.filters import parse_filter_command
from rag.retrieve.followup import Turn
from rag.types import Article, Filter

if TYPE_CHECKING:
    from rag.answer.pipeline import AnswerPipeline

CHAT_HELP = (
    "Commands: /sources (what the last answer searched and read), /filter (which articles to search: "
    "/filter since 2024-01 outlet BBC; /filter off), /new (forget the conversation), /quit."
)


class ChatLoop:
    """One conversation on the terminal: text as it is generated, or one JSON line per answer (`as_json`, the
    messages then on stderr)."""

    def __init__(
        self, settings: Settings, pipeline: AnswerPipeline, scope: Filter, *, show_search: bool, as_json: bool
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.scope = scope
        self.show_search = show_search
        self.as_json = as_json
        self.history: list[Turn] = []
        self.last: AnswerView | None = None
        self.version = live_version(settings.index_dir)

    @property
    def articles(self) -> Mapping[str, Article]:
        return self.pipeline.retriever.index.articles

    def say(self, text: str) -> None:
        """A message to the reader (on stderr with --json, where stdout holds only answers)."""
        typer.echo(text, err=self.as_json)

    def run(self, lines: Iterable[str]) -> None:
        self.pipeline.retriever.warm_up()  # before the prompt: the first question is as quick as the next ones
        self.say(f"Ask about the articles in {self.settings.index_dir}. {CHAT_HELP}")
        for line in lines:
            question = line.strip()
            if not question:
                continue
            self._follow_the_index()
            if question in ("/quit", "/exit"):
                break
            if question.startswith("/") and self._command(question):
                continue
            self._answer(question)

    def _follow_the_index(self) -> None:
        """A build or update switched versions: answer from the new one."""
        if live_version(self.settings.index_dir) == self.version:
            return
        from rag.retrieve.retriever import load_retriever

        old = self.pipeline.retriever
        self.pipeline = self.pipeline.over(load_retriever(self.settings, old.embedder, old.translator))
        self.version = live_version(self.settings.index_dir)
        self.say(f"(index updated: {len(self.articles)} articles)")

    def _command(self, line: str) -> bool:
        """Run a slash command; False when the line is not one (it is then asked as a question)."""
        if line == "/new":
            self.history, self.last = [], None
            self.say("(new conversation)")
        elif line == "/sources":
            show.print_searched(self.last)
        elif line == "/filter" or line.startswith("/filter "):
            try:
                wanted = parse_filter_command(line, self.scope)
                self.pipeline.retriever.where(wanted)  # checked now: a filter that keeps nothing is refused here
            except RagError as exc:
                typer.echo(f"error: {exc}", err=True)
                return True
            self.scope = wanted
            self.say(f"(filter: {self.scope.describe() or 'none, every article is searched'})")
        else:
            return False
        return True

    def _answer(self, question: str) -> None:
        stream = None
        try:
            stream = self.pipeline.ask(question, tuple(self.history), on_wait=show.say_waiting, scope=self.scope)
            if self.show_search and stream.evidence.question != question:
                self.say(f"(searched as: {stream.evidence.question})")
            if self.as_json:
                self.last = answer_view(stream.answer, stream.evidence, self.articles, self.scope)
                typer.echo(json.dumps(dict(self.last.data), ensure_ascii=False))
            else:
                if self.scope.active:
                    typer.echo(f"(filter: {self.scope.describe()})\n")
                self.last = show.stream_answer(stream, self.articles, self.scope)
        except RagError as exc:
            if self.as_json:
                typer.echo(json.dumps({"question": question, "answer": None, "error": str(exc)}, ensure_ascii=False))
            elif stream is not None and isinstance(exc, LLMError):
                show.print_retrieved(retrieved_view(stream.evidence, self.articles), as_json=False)
            typer.echo(f"error: {exc}", err=True)
            return
        self.history.append(Turn(question, self.last.text))
