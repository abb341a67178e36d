"""Per-provider pacing: a requests-per-minute limit and an adaptive concurrency limit.

After a 429 the provider's concurrency halves; each success raises it by 1/limit
(additive increase, multiplicative decrease), so a big matrix backs off a throttled
gateway instead of hammering it, then speeds up again.
"""

from __future__ import annotations

import threading
import time

from ..cancellation import Cancellation

SLICE = 0.2  # seconds: a wait for a slot looks at the cancellation this often


class Throttle:
    def __init__(self, max_concurrency: int, *, per_minute: float | None = None) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.limit = float(self.max_concurrency)
        self.in_flight = 0
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next_start = 0.0
        self._cond = threading.Condition()

    def acquire(self, deadline: float | None = None,
                cancel: Cancellation | None = None) -> bool:
        """Wait for a slot; False when ``deadline`` (monotonic) passes first.

        Raises:
            Cancelled: ``cancel`` was set while waiting (no slot is held then).
        """
        with self._cond:
            while self.in_flight >= int(self.limit):
                if cancel is not None:
                    cancel.check()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(timeout=min(SLICE, remaining) if remaining is not None
                                else SLICE)
            self.in_flight += 1
            start = max(time.monotonic(), self._next_start)
            self._next_start = start + self.interval
        delay = start - time.monotonic()
        if delay > 0:
            try:
                if cancel is not None:
                    cancel.sleep(delay)
                else:
                    time.sleep(delay)
            except BaseException:
                self.release()
                raise
        return True

    def release(self, *, throttled: bool = False) -> None:
        with self._cond:
            self.in_flight -= 1
            if throttled:
                self.limit = max(1.0, self.limit / 2)
            else:
                self.limit = min(float(self.max_concurrency), self.limit + 1.0 / self.limit)
            self._cond.notify_all()
