"""One question through the answer pipeline as a sequence of events, for the API's routes: the steps, the text as
it streams, then the finished answer view (or, when the answer model failed, the passages found), and the turn
saved to a chat when one is given."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rag.answer.pipeline import AnswerPipeline
from rag.answer.view import AnswerView, answer_view, retrieved_view
from rag.errors import LLMError
from rag.retrieve.followup import Turn
from rag.state.chats import ChatStore, SavedTurn, saved_sources
from rag.types import Filter


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of one answer: its view, the answer model's error when it failed (the view then holds the passages
    found), and the chat turn it was saved as (None: not saved)."""

    view: AnswerView
    error: str | None = None
    turn: SavedTurn | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The answer's JSON (as `rag ask --json`), with the error and the chat turn when there are."""
        data = dict(self.view.data)
        if self.error:
            data["error"] = f"{self.error} The passages retrieved for the question are under `passages`."
        if self.turn is not None:
            data["chat"] = {"id": self.turn.chat_id, "turn": self.turn.n}
        return data


@dataclass(frozen=True, slots=True)
class Saving:
    """Where a finished answer is saved: the store, the chat and its owner, and the index version answered from."""

    store: ChatStore
    chat_id: str
    owner: str
    index_version: str | None


Event = tuple[str, Any]  # ("step", name) | ("text", delta) | ("done", Finished)


def answer_events(
    pipeline: AnswerPipeline,
    question: str,
    history: tuple[Turn, ...] = (),
    *,
    k: int | None = None,
    scope: Filter | None = None,
    saving: Saving | None = None,
) -> Iterator[Event]:
    """Answer `question`: ("step", name) as each step starts, ("text", delta) as the answer streams, then ("done",
    Finished). An error before the answer streams (a filter that keeps nothing, a missing index) is raised."""
    steps: list[str] = []
    stream = pipeline.ask(question, history, k=k, on_step=steps.append, scope=scope)
    articles = pipeline.retriever.index.articles
    error = None
    try:
        for delta in stream:
            yield from (("step", s) for s in steps)
            steps.clear()
            yield "text", delta
        view = answer_view(stream.answer, stream.evidence, articles, scope)
    except LLMError as exc:
        view, error = retrieved_view(stream.evidence, articles), str(exc)
    yield from (("step", s) for s in steps)
    turn = None
    if saving is not None:
        data = dict(view.data) | ({"error": error} if error else {})
        turn = saving.store.add_turn(
            saving.chat_id,
            saving.owner,
            question,
            data,
            saved_sources(view.sources),
            index_version=saving.index_version,
        )
    yield "done", Finished(view, error, turn)


def answer_once(
    pipeline: AnswerPipeline,
    question: str,
    history: tuple[Turn, ...] = (),
    *,
    k: int | None = None,
    scope: Filter | None = None,
    saving: Saving | None = None,
) -> Finished:
    """The finished answer, not streamed."""
    for kind, value in answer_events(pipeline, question, history, k=k, scope=scope, saving=saving):
        if kind == "done":
            return value  # type: ignore[no-any-return]
    raise AssertionError("answer_events ends with a done event")
