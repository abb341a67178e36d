"""The text reporter's live status line counts what is really in progress."""

from __future__ import annotations

import io

from flowrunner.run.reporting import TextReporter
from flowrunner.run.results import StepResult


def test_cached_and_skipped_instances_leave_the_running_count() -> None:
    stream = io.StringIO()
    reporter = TextReporter(stream, live=True)
    reporter.run_started("r.yaml", 4, 2)
    for name in ("a", "b", "c"):
        reporter.step_started(name)
    reporter.step_finished(StepResult("a", "a", "x", "cached"))
    reporter.step_finished(StepResult("b", "b", "x", "skipped", reason="condition is false"))
    assert reporter.running == 1
    assert stream.getvalue().rstrip().endswith("2/4 done · 1 running · 0 failed · 0 credits")
    # a dependent skipped without ever starting does not go below zero or count twice
    reporter.step_finished(StepResult("d", "d", "x", "skipped", reason="needs c"))
    assert reporter.running == 1
