"""Per-caller limits of the API: requests running at once, and requests started in any 60 seconds."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from rag.errors import RagError

WINDOW = 60.0  # seconds


class TooManyRequestsError(RagError):
    """A caller is over one of its limits; `retry_after`: seconds until it may try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Limiter:
    """Counts each caller's running requests and the starts of its last minute (thread-safe)."""

    def __init__(self, concurrent: int, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrent = concurrent
        self.per_minute = per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, int] = defaultdict(int)
        self._started: dict[str, deque[float]] = defaultdict(deque)

    def acquire(self, caller: str) -> None:
        """Count a request of `caller` as started and running, or raise TooManyRequestsError."""
        now = self.clock()
        with self._lock:
            started = self._started[caller]
            while started and started[0] <= now - WINDOW:
                started.popleft()
            if self._running[caller] >= self.concurrent:
                raise TooManyRequestsError(
                    f"Too many requests at once: this key may have {self.concurrent} running (RAG_API_CONCURRENT). "
                    "Wait for one to finish.",
                    1,
                )
            if len(started) >= self.per_minute:
                wait = max(1, math.ceil(started[0] + WINDOW - now))
                raise TooManyRequestsError(
                    f"Too many requests: this key may start {self.per_minute} a minute (RAG_API_PER_MINUTE). "
                    f"Try again in {wait} s.",
                    wait,
                )
            started.append(now)
            self._running[caller] += 1

    def release(self, caller: str) -> None:
        """The request of `caller` has finished."""
        with self._lock:
            self._running[caller] = max(0, self._running[caller] - 1)
