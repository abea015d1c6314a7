"""The store's lock file: one process at a time in an on-disk Chroma store, one writer at a time.

Chroma's on-disk store is not process-safe. A process that reads it while another writes loads
half-written HNSW files, fails its reads ("Error getting embedding") and can crash in Chroma's
Rust code; measured in docs/experiments.md. So a process holds the lock file while any of its
threads calls Chroma on disk (reads included), and another process waits its turn: a `serve`
beside an ingest interleaves with the ingest's write batches instead of reading under them.
Within a process the threads share the hold (Chroma is thread-safe within one process), and
writers take turns on top of it, so that no two count the same generation.

With a Chroma server (``store.mode: http``) the server is the one process: only writes and BM25
rebuilds take the lock, in the BM25 cache folder that the processes on this machine share.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from assistant.config import Settings
from assistant.errors import AssistantError


def lock_path(settings: Settings) -> Path:
    """The lock file of the configured collection."""
    store = settings.store
    # Chroma's own folder when it is on disk (the thing that is not process-safe); for a server,
    # the BM25 cache folder that the processes on this machine share.
    folder = settings.resolve(store.path if store.mode == "persistent" else store.lexical_cache)
    return folder / f".{store.collection}.write.lock"


class StoreLock:
    """One lock file as this process holds it: shared by its threads, counted, released by the last."""

    def __init__(self, path: Path):
        self.file = FileLock(str(path), thread_local=False)  # taken in one thread, maybe released in another
        self._count_lock = threading.Lock()
        self._holders = 0
        self._writer = threading.RLock()  # a writer may save the BM25 index inside its write

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the file while the block runs; other processes wait, this process's threads join."""
        with self._count_lock:
            if self._holders == 0:
                try:
                    self.file.acquire()  # waits while another process holds it
                except OSError as exc:
                    raise AssistantError(
                        f"cannot take the store's lock file {self.file.lock_file} ({exc.strerror or exc}): "
                        "the folder must be writable by this user (store.path, store.lexical_cache)"
                    ) from None
            self._holders += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._holders -= 1
                if self._holders == 0:
                    self.file.release()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The file held, and no other thread of this process writing."""
        with self.held(), self._writer:
            yield


_LOCKS: dict[Path, StoreLock] = {}
_LOCKS_LOCK = threading.Lock()


def store_lock(settings: Settings) -> StoreLock:
    """This process's one StoreLock for the configured collection (two would block each other)."""
    path = lock_path(settings).resolve()
    with _LOCKS_LOCK:
        if path not in _LOCKS:
            _LOCKS[path] = StoreLock(path)
        return _LOCKS[path]
