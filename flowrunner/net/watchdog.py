"""One watchdog thread for a whole run: it closes a connection whose deadline passed.

Per-read socket timeouts do not stop a server that drips a byte at a time, so every answer
and download is read under a deadline. A timer thread per request (threading.Timer) costs a
thread start and a lock dance per call, and one heap under one lock had 64 workers queueing
for it twice per request; this keeps the armed deadlines in a dict (arming and cancelling
are single dict operations, atomic under the interpreter lock) and one thread that looks at
them every ``TICK`` seconds. A deadline fires at most a tick late: deadlines are seconds to
minutes long, and they only ever stop a connection that is already too slow.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

TICK = 0.05


class Watchdog:
    """Calls ``action`` when ``deadline`` (monotonic) passes, unless cancelled first."""

    def __init__(self, tick: float = TICK) -> None:
        self._armed: dict[int, tuple[float, Callable[[], object]]] = {}
        self._kept: set[int] = set()  # deadlines `fire_all` leaves alone (a paid submit's)
        self._counter = itertools.count()
        self._tick = tick
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()  # set while the thread sleeps for want of deadlines
        self._wake = threading.Event()
        self._stopped = False  # after `fire_all`: every new deadline fires at once
        self._closed = False  # after `close`: the thread ends once nothing is armed

    def fire_all(self) -> None:
        """Run every armed action now, and any armed later at once (the run is cancelled:
        what is being read is closed), except those armed with ``cancellable=False``."""
        self._stopped = True
        for handle in list(self._armed):
            if handle in self._kept:
                continue
            armed = self._armed.pop(handle, None)
            if armed is not None:
                _fire(armed[1])

    def watch(self, deadline: float, action: Callable[[], object], *,
              cancellable: bool = True) -> int:
        """Arm a deadline; the returned handle cancels it. ``cancellable=False``: only the
        deadline fires it, never `fire_all` (the answer to a paid submit is worth its
        reading to the end: it names the task the next run resumes)."""
        handle = next(self._counter)
        if self._stopped and cancellable:
            _fire(action)
            return handle
        if not cancellable:
            self._kept.add(handle)
        self._armed[handle] = (deadline, action)
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="flow-watchdog",
                                                    daemon=True)
                    self._thread.start()
        if self._idle.is_set():  # a plain read: no lock on the busy path
            self._wake.set()
        return handle

    def close(self) -> None:
        """End the thread (once what is armed has fired or been cancelled)."""
        self._closed = True
        self._wake.set()

    def cancel(self, handle: int) -> None:
        self._armed.pop(handle, None)
        self._kept.discard(handle)

    def _run(self) -> None:
        while True:
            if not self._armed and self._closed:
                with self._start:
                    self._thread = None  # a deadline armed after this starts a new one
                return
            if not self._armed:
                # nothing to watch: no ticking until something is armed (checked again
                # after saying so, so an arming in between is never missed)
                self._idle.set()
                if not self._armed:
                    self._wake.wait(1.0)
                self._idle.clear()
                self._wake.clear()
                continue
            time.sleep(self._tick)
            now = time.monotonic()
            for handle, (deadline, _) in list(self._armed.items()):
                if deadline <= now:
                    armed = self._armed.pop(handle, None)  # None: cancelled meanwhile
                    self._kept.discard(handle)
                    if armed is not None:
                        _fire(armed[1])


def _fire(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001, S110 - closing a dead connection may fail
        pass
