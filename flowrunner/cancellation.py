"""One cancellation signal for a whole run: Ctrl-C or SIGTERM sets it, and every wait in
the run ends at once (a poll's pause, a backoff before a retry, a wait for a free slot,
for a key lock or another machine's claim), and every HTTP answer or download being read
is closed (the HTTP client registers that as an action).

Waits use `Cancellation.sleep` instead of `time.sleep`: it returns after the given time,
or raises `Cancelled` as soon as the run is cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled


class Cancellation:
    """A run's cancellation signal (thread-safe; set once, never cleared)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._actions: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Cancel the run: wake every wait, then run each registered action once."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            actions, self._actions = self._actions, []
        for action in actions:
            try:
                action()
            except Exception:  # noqa: BLE001, S110 - closing what is being read may fail
                pass

    def on_cancel(self, action: Callable[[], object]) -> None:
        """Run ``action`` when the run is cancelled (at once, if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._actions.append(action)
                return
        action()

    def check(self, what: str = "stopped") -> None:
        """Raises: Cancelled: the run is cancelled."""
        if self._event.is_set():
            raise Cancelled(f"{what}: the run was interrupted")

    def sleep(self, seconds: float, what: str = "stopped") -> None:
        """Wait ``seconds``, unless the run is cancelled first.

        Raises:
            Cancelled: the run was cancelled before or during the wait.
        """
        if self._event.wait(max(0.0, seconds)):
            raise Cancelled(f"{what}: the run was interrupted")
