"""Task slots: at most N tasks submitted and not yet finished at once, per provider profile
(and per step where a recipe says so). A submit takes a slot (waiting, cancellably, for
one); the task gives it back when it ends, however it ends. `concurrency` bounds HTTP
calls at once; this bounds what a provider is asked to run at once.

When the provider answers that too many of the key's tasks run (Kling's 1303, Midjourney's
"queue full"), `lower` brings the limit down to what is running now, so the next submits
wait for a slot instead of being refused; `said` tells whether that was reported already.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ..cancellation import Cancellation

_WAKE = 0.2  # seconds between looks at the run's cancellation while waiting


class TaskSlots:
    """A counting limit on tasks in flight, that can be lowered while the run goes on."""

    def __init__(self, limit: int | None, cancel: Cancellation | None = None,
                 name: str = "default") -> None:
        self.limit = limit  # None: no limit of its own (only lowered by a refusal)
        self.configured = limit
        self.lowered = False
        self.name = name
        self.in_use = 0  # slots held (a submit on its way, or a task running)
        self.running = 0  # tasks the provider accepted and that have not ended
        self.cancel = cancel or Cancellation()
        self.said = False  # a lowering was reported
        self._free = threading.Condition()
        self._waiting: deque[Callable[[], None]] = deque()  # parked runs waiting for a slot

    def acquire(self, what: str) -> None:
        """Take a slot, waiting for one.

        Raises:
            Cancelled: the run was interrupted while waiting.
        """
        with self._free:
            while self.limit is not None and self.in_use >= self.limit:
                self.cancel.check(what)
                self._free.wait(_WAKE)
            self.in_use += 1

    def started(self) -> None:
        """The holder's task was accepted (or resumed): it runs at the provider. After a
        refusal lowered the limit, each accepted task raises it by one again (up to the
        recipe's own), so a lowering that went too far recovers."""
        with self._free:
            self.running += 1
            if self.lowered and (self.configured is None or self.limit is None
                                 or self.limit < self.configured):
                self.limit = (self.limit or 0) + 1
                self._free.notify()
                waiting = self._waiting.popleft() if self._waiting else None
            else:
                waiting = None
        if waiting is not None:
            waiting()

    def say_once(self) -> bool:
        """True the first time a lowering is to be said."""
        with self._free:
            first, self.said = not self.said, True
            return first

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (a parked run never waits in a thread)."""
        with self._free:
            if self.limit is not None and self.in_use >= self.limit:
                return False
            self.in_use += 1
            return True

    def when_free(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when a slot frees (at once, if one is free now)."""
        with self._free:
            free = self.limit is None or self.in_use < self.limit
            if not free:
                self._waiting.append(callback)
        if free:
            callback()

    def nudge(self) -> None:
        """Wake the next waiter if a slot is free: a woken run that did not take the slot
        (its result came from elsewhere) passes its turn on."""
        with self._free:
            free = self.limit is None or self.in_use < self.limit
            waiting = self._waiting.popleft() if free and self._waiting else None
        if waiting is not None:
            waiting()

    def release(self, *, started: bool) -> None:
        with self._free:
            self.in_use = max(0, self.in_use - 1)
            if started:
                self.running = max(0, self.running - 1)
            self._free.notify()
            waiting = self._waiting.popleft() if self._waiting else None
        if waiting is not None:
            waiting()

    def lower(self) -> int | None:
        """The provider refused a submit for too many running tasks: at most what runs
        now (at least one). Returns the new limit, or None when it was not lowered."""
        with self._free:
            running = max(1, self.running)
            if self.limit is not None and self.limit <= running:
                return None
            self.limit, self.lowered = running, True
            return running
