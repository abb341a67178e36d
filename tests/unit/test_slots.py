"""Task slots (issue 28): at most N tasks in flight, a wait that Ctrl-C ends, and a limit a
provider's refusal brings down to what runs."""

from __future__ import annotations

import threading
import time

import pytest

from flowrunner.cancellation import Cancellation
from flowrunner.errors import Cancelled
from flowrunner.net.slots import TaskSlots


def test_a_submit_waits_for_a_free_slot_and_gets_the_next_one() -> None:
    slots = TaskSlots(2)
    slots.acquire("a")
    slots.acquire("b")
    taken = threading.Event()

    def third() -> None:
        slots.acquire("c")
        taken.set()

    waiter = threading.Thread(target=third)
    waiter.start()
    assert not taken.wait(0.3)  # both slots held: the third waits
    slots.release(started=False)
    assert taken.wait(2)
    waiter.join()
    assert slots.in_use == 2


def test_the_wait_ends_when_the_run_is_cancelled() -> None:
    cancel = Cancellation()
    slots = TaskSlots(1, cancel)
    slots.acquire("a")
    threading.Timer(0.2, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        slots.acquire("b")
    assert time.monotonic() - started < 1.0


def test_a_busy_refusal_lowers_the_limit_to_the_tasks_running() -> None:
    slots = TaskSlots(None)  # no limit of its own
    for name in "abc":
        slots.acquire(name)
    slots.started()  # one task accepted; two submits refused
    assert slots.lower() == 1 and slots.limit == 1
    assert slots.lower() is None  # already there
    slots.release(started=True)
    slots.release(started=False)
    slots.release(started=False)
    assert (slots.in_use, slots.running) == (0, 0)
