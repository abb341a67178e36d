"""The run's worker threads: a bounded pool of daemon threads.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so
an interrupted run would wait for every call still blocked in a read (a stalled answer
waits out the step's timeout, minutes for a video). These threads are daemons: once the
interruption's bookkeeping is done (nothing in flight is half-written: every write is a
temp file renamed into place, every submitted task is journaled), the process exits
without them. Futures are `concurrent.futures.Future`s, so callers wait as usual.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_STOP = None


class WorkerPool:
    """Up to ``workers`` daemon threads, started as work arrives."""

    def __init__(self, workers: int, *, name: str = "flow") -> None:
        self._max = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
                                       | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._queue.put((future, fn, args))
            if self._idle:
                self._idle -= 1  # an idle thread takes it
            elif len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"{self._name}_{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to the future's owner
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, *, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``cancel_futures``, cancel what has not started; with
        ``wait``, wait for the threads to finish what they run."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                thread.join()
