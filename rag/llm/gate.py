"""Queueing for the answer model: at most N requests at once, across threads and processes, first come first served.

A gate is a folder in the cache (one per endpoint and model). A request waiting for its turn leaves a ticket
file there (named by its arrival time and pid); a request being served holds one of N slot files' locks
(`filelock`, an exclusive flock). Locks vanish with the process that held them, and tickets of dead processes
are swept, so a killed asker never blocks the queue. Polling (every `poll` seconds) keeps it simple and portable
across processes.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag.errors import LLMError

OnWait = Callable[[int], None]  # told how many requests are ahead while waiting, then 0 when the turn comes


class ModelBusyError(LLMError):
    """The answer model had no free turn within the time allowed."""

    def __init__(self, message: str, ahead: int) -> None:
        super().__init__(message)
        self.ahead = ahead


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelGate:
    """At most `slots` requests to one answer model at a time; the others wait in arrival order."""

    def __init__(self, folder: Path, slots: int, label: str = "The answer model", poll: float = 0.1) -> None:
        if slots < 1:
            raise ValueError(f"RAG_LLM_CONCURRENCY must be at least 1, got {slots}.")
        self.folder = folder
        self.slots = slots
        self.label = label  # names the model in the busy message
        self.poll = poll

    @contextmanager
    def turn(self, timeout: float, on_wait: OnWait | None = None) -> Iterator[None]:
        """Hold one of the slots for the body of the `with`; wait for it while the line moves (0: do not wait).

        The wait gives up when `timeout` seconds pass without a request ahead finishing: a long line that keeps
        moving is waited out (the reader is told how many are ahead), a stuck one is not. `on_wait(n)` is told the
        number of requests ahead whenever it changes while waiting, and `on_wait(0)` when a turn that had to wait
        begins. Raises ModelBusyError when the wait runs out.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        ticket = self.folder / f"wait-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        ticket.touch()
        deadline = time.monotonic() + timeout
        told: int | None = None
        fewest: int | None = None  # the shortest line seen so far; a shorter one means it moved
        held = None
        try:
            while True:
                held, ahead = self._try(ticket)
                if held is not None:
                    break
                if fewest is not None and ahead < fewest:
                    deadline = time.monotonic() + timeout
                fewest = ahead if fewest is None else min(fewest, ahead)
                if time.monotonic() >= deadline:
                    raise ModelBusyError(
                        f"{self.label} is busy: {fewest} request(s) still ahead, and none finished in the last "
                        f"{timeout:.0f} s. Try again in a moment, or raise RAG_LLM_TIMEOUT (or RAG_LLM_CONCURRENCY "
                        "when the endpoint can answer several questions at once).",
                        fewest,
                    )
                # A FIFO line only gets shorter: a count that rises is a glimpse between one turn ending and the
                # next beginning (a slot seen free, or a ticket not yet removed), so the reader is told the fewest.
                if on_wait is not None and fewest != told:
                    on_wait(fewest)
                    told = fewest
                time.sleep(self.poll)
        finally:
            ticket.unlink(missing_ok=True)
        try:
            if told is not None and on_wait is not None:
                on_wait(0)
            yield
        finally:
            held.release()

    def _waiting(self) -> list[Path]:
        """Live tickets in arrival order; tickets of processes that died are removed."""
        tickets = []
        for path in sorted(self.folder.glob("wait-*")):
            try:
                pid = int(path.name.split("-")[2])
            except (IndexError, ValueError):
                continue
            if pid_alive(pid):
                tickets.append(path)
            else:
                path.unlink(missing_ok=True)
        return tickets

    def _try(self, ticket: Path) -> tuple[FileLock | None, int]:
        """A held slot's lock if it is this ticket's turn and a slot is free; else None and how many are ahead."""
        waiting = self._waiting()
        position = waiting.index(ticket) if ticket in waiting else 0
        free: list[FileLock] = []
        busy = 0
        for i in range(self.slots):
            slot = FileLock(self.folder / f"slot-{i}.lock", thread_local=False)
            try:
                slot.acquire(timeout=0)
                free.append(slot)
            except Timeout:
                busy += 1
        keep = free[0] if position < len(free) else None
        for slot in free:
            if slot is not keep:
                slot.release()  # a slot locked only to see whether it was free
        return keep, position + busy


def gate_for(cache: Path, endpoint: str, model: str, slots: int) -> ModelGate:
    """The gate shared by every request to `model` at `endpoint` made with this cache folder."""
    key = hashlib.sha256(f"{endpoint}\n{model}".encode()).hexdigest()[:12]
    return ModelGate(cache / "llm-queue" / key, slots, f"The answer model at {endpoint}")
