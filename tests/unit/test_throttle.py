"""Per-provider pacing: AIMD concurrency after 429s, and the requests-per-minute spacing."""

from __future__ import annotations

import threading
import time

from flowrunner.net.throttle import Throttle


def test_429_halves_the_limit_and_successes_raise_it_again() -> None:
    throttle = Throttle(8)
    assert throttle.acquire()
    throttle.release(throttled=True)
    assert throttle.limit == 4
    assert throttle.acquire()
    throttle.release(throttled=True)
    assert throttle.limit == 2
    for _ in range(40):
        assert throttle.acquire()
        throttle.release()
    assert throttle.limit == 8  # additive increase, capped at the configured concurrency


def test_in_flight_calls_never_exceed_the_current_limit() -> None:
    throttle = Throttle(4)
    throttle.limit = 2
    peak = 0
    running = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal peak, running
        assert throttle.acquire(time.monotonic() + 10)
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        throttle.release(throttled=True)  # keep it throttled

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 2


def test_acquire_gives_up_at_the_deadline() -> None:
    throttle = Throttle(1)
    assert throttle.acquire()
    assert throttle.acquire(time.monotonic() + 0.05) is False


def test_rate_limit_spaces_the_starts() -> None:
    throttle = Throttle(4, per_minute=1200)  # one start every 50 ms
    started = time.monotonic()
    for _ in range(4):
        assert throttle.acquire()
        throttle.release()
    assert time.monotonic() - started >= 0.15
