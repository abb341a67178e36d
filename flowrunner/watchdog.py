"""One watchdog thread for a whole run: it closes a connection whose deadline passed.

Per-read socket timeouts do not stop a server that drips a byte at a time, so every answer
and download is read under a deadline. A timer thread per request (threading.Timer) costs a
thread start and a lock dance per call; this keeps one heap of deadlines and one thread.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Watchdog:
    """Calls ``action`` when ``deadline`` (monotonic) passes, unless cancelled first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._cancelled: set[int] = set()
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, action: Callable[[], object]) -> int:
        """Arm a deadline; the returned handle cancels it."""
        with self._wake:
            handle = next(self._counter)
            heapq.heappush(self._heap, (deadline, handle, action))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flow-watchdog",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][1] == handle:
                self._wake.notify()  # the new deadline is the nearest
        return handle

    def cancel(self, handle: int) -> None:
        with self._wake:
            self._cancelled.add(handle)
            if len(self._cancelled) > 1024 and len(self._cancelled) * 2 > len(self._heap):
                # most deadlines are cancelled long before they come: drop them in one go
                self._heap = [item for item in self._heap if item[1] not in self._cancelled]
                heapq.heapify(self._heap)
                self._cancelled.clear()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._heap)[1])
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, handle, action = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            try:
                action()
            except Exception:  # noqa: BLE001, S110 - closing a dead connection may fail; nothing to do
                pass
