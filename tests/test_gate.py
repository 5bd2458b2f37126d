"""The answer model's queue (rag/llm/gate.py): turns across threads and processes, in order, bounded, never stuck."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from rag.config import get_settings
from rag.errors import LLMError
from rag.index.build import index_articles
from rag.index.store import VectorIndex, load_index
from rag.llm.client import OpenAIChat, Queue
from rag.llm.gate import ModelBusyError, ModelGate, gate_for
from rag.retrieve.translate import QueryTranslator, Rendering
from rag.types import Article, IndexSpec

from .conftest import FakeChat, FakeEmbedder
from .stub_llm import ANSWER, StubLLM

ARTICLES = [
    Article("exports", "Exports", None, "mao ning said china controls the export of dual use items by law.", ""),
    Article("trade", "Trade", None, "trade between china and russia reached 190 billion dollars in 2022.", ""),
]


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the gate never got there"
        time.sleep(0.005)


def test_one_slot_serves_one_request_at_a_time_in_arrival_order(tmp_path: Path) -> None:
    gate = ModelGate(tmp_path / "q", slots=1, poll=0.01)
    inside, most, order = 0, 0, []
    lock = threading.Lock()
    all_in = threading.Event()
    told: dict[int, list[int]] = {}

    def ask(i: int) -> None:
        nonlocal inside, most
        told[i] = []
        with gate.turn(10.0, told[i].append):
            with lock:
                inside += 1
                most = max(most, inside)
                order.append(i)
            if i == 0:
                all_in.wait(10)  # hold the slot until the other three are in line
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = []
    for i in range(4):
        threads.append(threading.Thread(target=ask, args=(i,)))
        threads[-1].start()
        _until(lambda i=i: order[:1] == [0] and len(list((tmp_path / "q").glob("wait-*"))) == i)  # in line, in order
    all_in.set()
    for t in threads:
        t.join()
    assert most == 1
    assert order == [0, 1, 2, 3]
    assert told[0] == []  # the first found the model free
    assert told[3][0] == 3 and told[3][-1] == 0  # three ahead at first, then its turn
    assert told[3] == sorted(told[3], reverse=True)  # the count only goes down
    assert list((tmp_path / "q").glob("wait-*")) == []


class _Glimpses(ModelGate):
    """A gate whose line is seen as the given counts of requests ahead, then its turn."""

    def __init__(self, folder: Path, seen: list[int]) -> None:
        super().__init__(folder, slots=1, poll=0.0)
        self.seen = list(seen)

    def _try(self, ticket: Path) -> tuple[FileLock | None, int]:
        if self.seen:
            return None, self.seen.pop(0)
        return super()._try(ticket)


def test_the_count_ahead_never_rises_when_a_turn_changes_hands(tmp_path: Path) -> None:
    # between one turn ending and the next beginning, a waiter can glimpse the new holder's ticket and its slot
    told: list[int] = []
    with _Glimpses(tmp_path / "q", [3, 2, 3, 2, 1, 2, 1]).turn(10.0, told.append):
        pass
    assert told == [3, 2, 1, 0]


def test_slots_bound_concurrency(tmp_path: Path) -> None:
    gate = ModelGate(tmp_path / "q", slots=3, poll=0.01)
    inside, most = 0, 0
    lock = threading.Lock()

    def ask() -> None:
        nonlocal inside, most
        with gate.turn(10.0):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.3)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 3


def test_a_wait_past_its_timeout_says_how_many_are_ahead(tmp_path: Path) -> None:
    gate = ModelGate(tmp_path / "q", slots=1, label="The answer model at http://x/v1", poll=0.01)
    with gate.turn(1.0):
        with pytest.raises(ModelBusyError, match=r"http://x/v1 is busy: 1 request\(s\) still ahead.*RAG_LLM_TIMEOUT"):
            with gate.turn(0.2):
                pass
        t0 = time.monotonic()
        with pytest.raises(ModelBusyError) as busy:  # 0 = do not wait at all
            with gate.turn(0.0):
                pass
        assert busy.value.ahead == 1 and time.monotonic() - t0 < 0.5
    assert list((tmp_path / "q").glob("wait-*")) == []  # the timed-out tickets are gone
    with gate.turn(0.0):  # and the model is free again
        pass


def test_a_long_line_that_keeps_moving_is_waited_out(tmp_path: Path) -> None:
    """The wait gives up only when nobody ahead finishes for `timeout`; a long but moving line is waited out."""
    gate = ModelGate(tmp_path / "q", slots=1, poll=0.01)
    told: list[int] = []
    waited: list[float] = []

    def ahead_of_us(hold: float) -> None:
        with gate.turn(10.0):
            time.sleep(hold)

    def last() -> None:
        t0 = time.monotonic()
        with gate.turn(0.6, told.append):
            waited.append(time.monotonic() - t0)

    threads = [threading.Thread(target=ahead_of_us, args=(0.4,)) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.03)  # arrive in order
    threads.append(threading.Thread(target=last))
    threads[-1].start()
    for t in threads:
        t.join()
    assert waited and waited[0] > 1.0  # waited well past 0.6 s in all, as the line moved every 0.4 s
    assert told[0] == 4 and told[-1] == 0


def test_tickets_and_turns_of_dead_processes_do_not_block(tmp_path: Path) -> None:
    folder = tmp_path / "q"
    gate = ModelGate(folder, slots=1, poll=0.01)
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / f"wait-{0:020d}-{int(dead.stdout)}-deadbeef").touch()  # first in line, but its process is gone
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from rag.llm.gate import ModelGate\n"
            "with ModelGate(Path(sys.argv[1]), 1).turn(5):\n    print('held', flush=True); time.sleep(60)",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ModelBusyError):  # the other process has the turn
            with gate.turn(0.2):
                pass
        holder.kill()  # killed mid-answer: its lock goes with it
        holder.wait()
        with gate.turn(2.0):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert not any(p.name.startswith("wait-") for p in folder.iterdir())


def test_one_gate_per_endpoint_and_model(tmp_path: Path) -> None:
    a = gate_for(tmp_path, "http://127.0.0.1:8765/v1", "m", 1)
    assert a.folder == gate_for(tmp_path, "http://127.0.0.1:8765/v1", "m", 1).folder
    assert a.folder != gate_for(tmp_path, "http://127.0.0.1:8766/v1", "m", 1).folder
    assert a.folder != gate_for(tmp_path, "http://127.0.0.1:8765/v1", "n", 1).folder
    with pytest.raises(ValueError, match="RAG_LLM_CONCURRENCY"):
        ModelGate(tmp_path, 0)


# ------------------------------------------------------------ the queue in the client, the search and the answer

MESSAGES = [{"role": "user", "content": "What did Mao Ning say?"}]


@pytest.fixture
def index(tmp_path: Path) -> VectorIndex:
    """The two small articles, indexed with the fake embedder."""
    index_articles(ARTICLES, tmp_path / "index", FakeEmbedder(), IndexSpec(FakeEmbedder.name, 60, 0))
    return load_index(tmp_path / "index", IndexSpec(FakeEmbedder.name, 60, 0))


def _gated(url: str, gate: ModelGate, queue_timeout: float | None = None) -> OpenAIChat:
    return OpenAIChat("stub", url, None, timeout=10, max_tokens=50, queue=Queue(gate, queue_timeout))


def test_an_endpoint_never_gets_more_requests_than_its_concurrency(tmp_path: Path) -> None:
    gate = ModelGate(tmp_path / "q", slots=2, poll=0.01)
    answers: list[str] = []
    with StubLLM("ok", delay=0.3) as stub:

        def ask() -> None:
            answers.append("".join(_gated(stub.url, gate).stream(MESSAGES)))

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers == ["".join(ANSWER)] * 6  # every answer whole
    assert stub.busiest == 2


def test_a_queued_answer_that_waits_too_long_gets_a_clear_error(tmp_path: Path) -> None:
    gate = gate_for(tmp_path, "http://127.0.0.1:1/v1", "stub", 1)
    told: list[int] = []
    with StubLLM("ok") as stub, gate.turn(5.0):  # someone else's long answer
        busy = r"http://127.0.0.1:1/v1 is busy: 1 request\(s\) still ahead, and none finished in the last 0 s"
        with pytest.raises(LLMError, match=busy):
            "".join(_gated(stub.url, gate, queue_timeout=0.3).stream(MESSAGES, told.append))
        assert stub.requests == 0  # it never reached the model
    assert told == [1]


def test_a_search_does_not_wait_for_a_busy_model(tmp_path: Path) -> None:
    gate = ModelGate(tmp_path / "q", slots=1, poll=0.01)
    stub_ar = "ماذا قالت ماو نينغ؟"
    with StubLLM("ok", answer=[stub_ar]) as stub:
        translator = QueryTranslator(
            lambda: OpenAIChat("stub", stub.url, None, 10, 50, queue=Queue(gate, 0.0)), "m", tmp_path / "r.jsonl"
        )
        with gate.turn(5.0):  # the model is answering someone
            t0 = time.monotonic()
            busy = translator.render("What did Mao Ning say?")
            assert time.monotonic() - t0 < 1.0
            assert busy.arabic is None and busy.skipped == "the answer model was busy with another question"
        # no pause after "busy", nothing cached: the next search gets its rendering
        assert translator.render("What did Mao Ning say?") == Rendering(stub_ar)


def test_a_question_searched_without_its_rendering_tries_again_at_the_next_ask(index: VectorIndex) -> None:
    from rag.answer.pipeline import gather_evidence
    from rag.retrieve.retriever import Retriever

    asked: list[str] = []

    class Translator:  # busy for the first question only
        def render(self, question: str) -> Rendering:
            asked.append(question)
            if len(asked) == 1:
                return Rendering(skipped="the answer model was busy with another question")
            return Rendering("ماذا قالت ماو نينغ؟")

    r = Retriever(index, FakeEmbedder(), translator=Translator())  # type: ignore[arg-type]
    first = gather_evidence("What did Mao Ning say?", r)
    assert len(asked) == 1  # one rendering per answer: search, reading and quotes read the same Query
    assert first.translation is None and first.translation_skipped == "the answer model was busy with another question"
    assert first.query is not None and len(first.query.vectors) == 1 and first.query.lexical == ""
    again = gather_evidence("What did Mao Ning say?", r)  # no cache of the first answer decides the next one
    assert again.translation == "ماذا قالت ماو نينغ؟" and again.translation_skipped is None
    assert again.query is not None and len(again.query.vectors) == 2 and "ماو نينغ" in again.query.lexical


class QueuedChat(FakeChat):
    """Says two then one question is ahead, then answers."""

    def stream(self, messages, on_wait=None):  # type: ignore[no-untyped-def]
        for ahead in (2, 1):
            if on_wait:
                on_wait(ahead)
            time.sleep(0.05)
        if on_wait:
            on_wait(0)
        yield self.reply


def test_the_answer_says_how_long_it_queued(index: VectorIndex) -> None:
    from rag.answer.pipeline import Hooks, ask
    from rag.retrieve.retriever import retriever_for

    retriever = retriever_for(index, FakeEmbedder(), get_settings(translate_queries=False))
    told: list[int] = []
    stream = ask(
        "what did mao ning say about exports",
        retriever,
        QueuedChat("Mao Ning said so [1]."),
        hooks=Hooks(on_wait=told.append),
    )
    answer = stream.answer
    assert told == [2, 1, 0]
    assert 0.09 < answer.waited_seconds < answer.seconds
    assert answer.first_text_seconds is not None and answer.first_text_seconds >= answer.waited_seconds
    assert 0 < answer.search_seconds < answer.seconds
