"""Index versions on disk: one writer at a time (the writer lock), the `current` symlink that names the live
version, and the removal of versions no reader can still be loading."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexBusyError

CURRENT = "current"  # symlink to the live version folder
RETIRED = ".retired"  # suffix of a version folder being removed (its Milvus rows may already be gone)


def writer_lock_path(index_dir: Path) -> Path:
    """The lock file that admits one writer (build or update) at a time."""
    return index_dir / ".writer.lock"


@contextmanager
def writer_lock(index_dir: Path, wait: bool = False, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's writer lock (`filelock`'s flock): exclusive, released by the kernel when the holder dies.

    A second writer waits (`wait`) or gets IndexBusyError naming the holder's pid, which the holder writes into
    the lock file. Under the lock, temporary versions and switch links left by a killed writer are removed.
    """
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    path = writer_lock_path(index_dir)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise IndexBusyError(_busy_message(index_dir, _holder(path))) from None
        if on_wait:
            on_wait(f"Waiting for the build or update (pid {_holder(path)}) that is writing {index_dir}…")
        lock.acquire()
    try:
        path.write_text(str(os.getpid()))  # filelock never truncates the file, so the pid is ours to write
        _remove_leftovers(index_dir)
        yield
    finally:
        lock.release()


def _holder(path: Path) -> str:
    """The pid the lock holder wrote into the lock file."""
    try:
        return path.read_text(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


def _busy_message(index_dir: Path, holder: str) -> str:
    return (
        f"Another build or update (pid {holder}) is writing {index_dir}: wait for it to finish, "
        "or pass --wait to queue behind it."
    )


def check_not_busy(index_dir: Path) -> None:
    """Fail fast (before loading any model) when another writer holds the index; the real lock comes later."""
    from filelock import FileLock, Timeout

    path = writer_lock_path(index_dir)
    if not path.exists():
        return
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise IndexBusyError(_busy_message(index_dir, _holder(path))) from None
    lock.release()


def _remove_leftovers(index_dir: Path) -> None:
    """Temporary versions and switch links of writers that were killed (only ever called under the lock)."""
    for p in index_dir.iterdir():
        if p.name.startswith("v-") and p.name.endswith(".tmp") and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{CURRENT}.") and p.is_symlink():
            p.unlink(missing_ok=True)


def live_path(index_dir: Path) -> Path:
    """The folder of the live version (resolved through the `current` symlink)."""
    return (index_dir / CURRENT).resolve()


def old_versions(index_dir: Path, keep: set[str]) -> list[Path]:
    """The version folders other than those in `keep`."""
    return [
        p
        for p in index_dir.iterdir()
        if p.is_dir()
        and not p.is_symlink()
        and p.name.startswith("v-")
        and not p.name.endswith(".tmp")
        and p.name not in keep
    ]


def live_version(index_dir: Path) -> str | None:
    """The name of the live version folder (changes with every build or update), None without an index."""
    try:
        return os.readlink(index_dir / CURRENT)
    except OSError:
        return None
