"""One round of following the sources: pull, update the index when something arrived, check the watches against
the new articles. `rag sources pull` runs one round, `--every 15m` one round per period until stopped. One round
at a time per state folder (a lock); the index update takes the index's writer lock and waits for another writer,
and readers (the page, `rag serve`) keep the live version until the new one switches in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError
from rag.index.build import UpdateReport
from rag.serve.archive import Archive
from rag.sources.fetch import Fetcher, Politeness
from rag.sources.pull import PullReport, pull
from rag.sources.store import SourceStore
from rag.sources.watch import WatchHit, WatchStore, check_watches
from rag.state.db import StateDB

LOCK = "pull.lock"
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 60.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did: the pull, the index update (None when nothing new arrived) and the watch hits."""

    pull: PullReport
    update: UpdateReport | None
    hits: tuple[WatchHit, ...]


def period_seconds(text: str) -> float:
    """`15m`, `1h`, `90s`, `1d` (a bare number is minutes) in seconds; RagError for anything else or under 10 s."""
    match = _PERIOD.match(text)
    if not match:
        raise RagError(f"--every {text!r}: give a period such as 15m, 1h, 90s or 1d.")
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds < 10:
        raise RagError(f"--every {text!r}: at least 10 s between pulls, to be polite to the sites.")
    return seconds


def fetcher_for(settings: Settings) -> Fetcher:
    return Fetcher(
        Politeness(
            delay=settings.sources_delay,
            timeout=settings.sources_timeout,
            max_bytes=settings.sources_max_bytes,
            retries=settings.sources_retries,
            user_agent=settings.sources_user_agent,
        )
    )


@contextmanager
def one_round_at_a_time(state_dir: Path) -> Iterator[None]:
    """The pull lock of the state folder; RagError naming the way out when another round holds it."""
    from filelock import FileLock, Timeout

    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state_dir / LOCK), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RagError(
            f"Another `rag sources pull` is running on {state_dir} (lock {state_dir / LOCK}): let it finish, or "
            "stop it first."
        ) from None
    try:
        yield
    finally:
        lock.release()


class Follower:
    """Runs rounds for one settings object, keeping the embedding model and the loaded index between rounds."""

    def __init__(
        self,
        settings: Settings,
        *,
        fetcher: Fetcher | None = None,
        archive: Archive | None = None,
        progress: bool = False,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = StateDB(settings.state_dir)
        self.sources = SourceStore(self.db)
        self.watches = WatchStore(self.db)
        self.fetcher = fetcher
        self.archive = archive
        self.progress = progress
        self.on_note = on_note

    def _archive(self) -> Archive:
        if self.archive is None:
            self.archive = Archive(self.settings)
        return self.archive

    def round(self, index: bool = True) -> Round:
        """Pull, update, check the watches (`index=False`: pull only; `rag index update` later brings the index
        in line, and `rag watch run` checks the watches); one round at a time per state folder."""
        from rag.index.build import update_index
        from rag.index.versions import live_version

        s = self.settings
        with one_round_at_a_time(s.state_dir):
            fetcher = self.fetcher or fetcher_for(s)
            try:
                report = pull(
                    s.data_dir, self.sources, fetcher, max_items=s.sources_max_items, progress=self.progress,
                    on_note=self.on_note,
                )  # fmt: skip
            finally:
                if self.fetcher is None:
                    fetcher.close()
            if not index or (not report.stored and live_version(s.index_dir) is not None):
                return Round(report, None, ())
            archive = self._archive()
            update = update_index(
                s.data_dir, s.index_dir, archive.embedder(), s.index_spec, progress=self.progress, wait=True,
                options=s.store_options,
            )  # fmt: skip
            fresh = [*update.added, *update.changed]
            hits = check_watches(archive.pipeline(), self.watches, fresh) if fresh else []
            return Round(report, update, tuple(hits))

    def every(
        self,
        seconds: float,
        rounds: int | None = None,
        on_round: Callable[[Round], None] | None = None,
        index: bool = True,
    ) -> None:
        """A round every `seconds` (counted from each start) until interrupted, or `rounds` rounds; a failed round
        is a note, and the next one comes on time."""
        done = 0
        while rounds is None or done < rounds:
            started = time.monotonic()
            try:
                result = self.round(index)
                if on_round is not None:
                    on_round(result)
            except RagError as exc:
                if self.on_note is not None:
                    self.on_note(f"this round failed: {exc}; the next one starts on time")
            done += 1
            if rounds is not None and done >= rounds:
                break
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
