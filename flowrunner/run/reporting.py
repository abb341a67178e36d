"""Reporters: how a run is shown. Text for people (live on a terminal, one line per event
otherwise), JSON lines for machines. Reporters format; they never decide exit codes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from .results import RunResult, StepResult

_WORDS = {"ok": "called", "cached": "cached", "failed": "FAILED", "skipped": "skipped",
          "planned": "would call"}


def _credits(value: float) -> str:
    return f"{value:g}"


def _message(result: StepResult) -> str:
    """The error message without a leading instance id (the line already names it)."""
    text = result.error.message if result.error is not None else "?"
    prefix = f"{result.instance_id}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def github_annotation(location: str | None, message: str, *, title: str = "flow") -> str:
    """A GitHub Actions workflow command that puts ``message`` on the recipe's line."""
    props = [f"title={_escape(title, prop=True)}"]
    if location:
        path, _, rest = location.rpartition(":")  # path:line:col
        path, _, line = path.rpartition(":")
        if path and line.isdigit() and rest.isdigit():
            props = [f"file={_escape(_workspace_path(path), prop=True)}", f"line={line}",
                     f"col={rest}", *props]
    return f"::error {','.join(props)}::{_escape(message)}"


def _workspace_path(path: str) -> str:
    """GitHub places annotations by paths relative to the checkout, not to where flow ran."""
    import os

    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return path
    full = os.path.abspath(path)
    relative = os.path.relpath(full, os.path.abspath(workspace))
    return path if relative.startswith("..") else relative.replace(os.sep, "/")


def markdown_summary(result: RunResult) -> str:
    """The run as Markdown, for $GITHUB_STEP_SUMMARY."""
    icon = "✅" if result.ok else "❌"
    lines = [f"### {icon} flow run `{result.recipe}`", "",
             f"{len(result.results)} instances: {result.count('ok')} called, "
             f"{result.count('cached')} cached, {result.count('failed')} failed, "
             f"{result.count('skipped')} skipped · **{result.amount('ok')} "
             f"{result.spent_word}{result.estimated_note('ok')}**, "
             f"{result.amount('cached')} saved by the cache", "",
             *([result.remote_line, ""] if result.remote_line else []),
             "| instance | endpoint | status | credits |", "| --- | --- | --- | --- |"]
    for item in result.results:
        status = _WORDS[item.status]
        if item.status == "failed":
            status += f": {_message(item)[:120]}"
        lines.append(f"| `{item.instance_id}` | {item.endpoint} | {status} | "
                     f"{'~' * item.credits_estimated}{_credits(item.credits)} |")
    new = [f"{result.output_dir}/{path}" if result.output_dir else path
           for item in result.results if item.status == "ok" for path in item.saved]
    if new:
        lines += ["", "New assets:", ""] + [f"- `{path}`" for path in new]
    return "\n".join(lines) + "\n"


class Reporter(Protocol):
    def run_started(self, recipe: str, instances: int, concurrency: int) -> None: ...
    def step_started(self, instance_id: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def note(self, message: str) -> None: ...
    def flush(self) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class TextReporter:
    """Aligned lines per finished instance; on a terminal, a live status line as well."""

    def __init__(self, stream: TextIO, *, live: bool = False, verbosity: int = 0,
                 annotate: bool = False) -> None:
        self.stream = stream
        self.live = live
        self.annotate = annotate
        self.verbosity = verbosity
        self.total = 0
        self.done = 0
        self.started: set[str] = set()  # instances started and not finished yet
        self.failed = 0
        self.spent = 0.0
        self.width = 24
        self._lock = threading.Lock()
        self._flushed = 0.0
        self._pending: list[str] = []  # lines not written yet (not on a terminal)

    def _write(self, line: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + line + "\n")
            if self.done < self.total:
                self.stream.write(f"  {self.done}/{self.total} done · {self.running} running "
                                  f"· {self.failed} failed · {_credits(self.spent)} credits")
            self.stream.flush()
            return
        # a pipe or file (a CI log) gets lines in batches, at most a quarter of a second
        # late, instead of a system call per line (even under PYTHONUNBUFFERED)
        self._pending.append(line)
        now = time.monotonic()
        if now - self._flushed >= 0.25:
            self._flush()
            self._flushed = now

    def _flush(self) -> None:
        if self._pending:
            self.stream.write("\n".join(self._pending) + "\n")
            self._pending.clear()
        self.stream.flush()

    @property
    def running(self) -> int:
        """How many instances are in progress (cached and skipped ones finish at once)."""
        return len(self.started)

    def run_started(self, recipe: str, instances: int, concurrency: int) -> None:
        self.total = instances
        with self._lock:
            self._write(f"flow: {recipe}: {instances} instance{'s' * (instances != 1)}, "
                        f"up to {concurrency} at once")

    def step_started(self, instance_id: str) -> None:
        with self._lock:
            self.started.add(instance_id)
            self.width = max(self.width, min(len(instance_id) + 2, 48))
            if self.verbosity > 0:
                self._write(f"  started  {instance_id}")

    def step_finished(self, result: StepResult) -> None:
        with self._lock:
            self.done += 1
            self.started.discard(result.instance_id)
            if result.status == "failed":
                self.failed += 1
            if result.status == "ok":
                self.spent += result.credits
            word = _WORDS[result.status]
            detail = []
            if result.status == "ok":
                detail.append(f"~{_credits(result.credits)} {result.unit}, estimated"
                              if result.credits_estimated else
                              f"{_credits(result.credits)} {result.unit}")
                detail.append(f"{result.duration:.1f}s")
            if result.resumed:
                detail.append("resumed task")
            if result.status == "skipped" and result.reason:
                detail.append(result.reason)
            if result.status == "failed" and result.error is not None:
                detail.append(_message(result).split("\n")[0][:160])
            name = result.instance_id
            dots = "." * max(2, self.width - len(name))
            text = f"  {name} {dots} {word}"
            if detail:
                text += f"  ({', '.join(detail)})"
            self._write(text)
            for message in result.notes:
                self._write(f"    note: {message}")

    def note(self, message: str) -> None:
        with self._lock:
            self._write(f"  {message}")

    def flush(self) -> None:
        """Write what is pending (a run that ends early still shows every line)."""
        with self._lock:
            self._flush()

    def run_finished(self, result: RunResult) -> None:
        with self._lock:
            self._flush()
            if self.live:
                self.stream.write("\r\033[K")
            parts = [f"{result.count('ok')} called", f"{result.count('cached')} cached"]
            if result.count("planned"):
                parts.append(f"{result.count('planned')} would call")
            parts += [f"{result.count('failed')} failed", f"{result.count('skipped')} skipped"]
            lines = [f"{len(result.results)} instances: " + ", ".join(parts)
                     + f" · {result.amount('ok')} {result.spent_word}"
                     f"{result.estimated_note('ok')}, {result.amount('cached')} saved by the "
                     f"cache · {result.elapsed:.1f}s"]
            if result.output_dir and not result.dry_run:
                lines.append(f"assets: {result.output_dir}")
            if result.lock_path:
                lines.append(f"lock file: {result.lock_path}")
            if result.gallery:
                lines.append(f"gallery: {result.gallery}")
            if result.failed:
                lines.append("")
                lines.append(f"{len(result.failed)} failed:")
                for failure in result.failed:
                    error = failure.error
                    lines.append(f"  {failure.instance_id}: {_message(failure)}")
                    if error is not None and error.hint:
                        lines.append(f"    hint: {error.hint}")
            if result.interrupted:
                stopped = f"{result.stopped} call{'s' * (result.stopped != 1)} in flight " \
                    "stopped; " if result.stopped else ""
                lines.append(f"interrupted: {stopped}finished steps are cached; run again to "
                             "resume (a submitted task is polled, not paid for again)")
            if self.annotate:
                lines += [github_annotation(f.location, _message(f), title=f"flow: {f.instance_id}")
                          for f in result.failed]
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


class JsonReporter:
    """One JSON object per line: step_started, step_finished, note, run_finished."""

    def __init__(self, stream: TextIO, **_: Any) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:  # one line per event, as it happens (a consumer may be waiting)
            self.stream.write(json.dumps(event, sort_keys=True) + "\n")
            self.stream.flush()

    def flush(self) -> None:
        """Every event is written when it happens: nothing to do."""

    def run_started(self, recipe: str, instances: int, concurrency: int) -> None:
        self._emit({"event": "run_started", "recipe": recipe, "instances": instances,
                    "concurrency": concurrency})

    def step_started(self, instance_id: str) -> None:
        self._emit({"event": "step_started", "instance": instance_id})

    def step_finished(self, result: StepResult) -> None:
        event = {"cached": "step_cached", "failed": "step_failed", "skipped": "step_skipped",
                 "ok": "step_finished", "planned": "step_planned"}[result.status]
        self._emit({"event": event, **result.to_json()})

    def note(self, message: str) -> None:
        self._emit({"event": "note", "message": message})

    def run_finished(self, result: RunResult) -> None:
        self._emit(result.to_json())



@dataclass(frozen=True, slots=True)
class RunEvent:
    """One thing a run did, for a Python caller's `on_event` (the JSON reporter's events,
    typed): `run_started`, `step_started`, `step_finished`, `note`, `run_finished`."""

    kind: str
    recipe: str | None = None
    instance: str | None = None
    result: StepResult | None = None  # step_finished
    message: str | None = None  # note
    run: RunResult | None = None  # run_finished
    instances: int = 0  # run_started: how many the run covers
    concurrency: int = 0


class CallbackReporter:
    """Hands each event to a callback, one at a time (calls come from worker threads)."""

    def __init__(self, callback: Callable[[RunEvent], None]) -> None:
        self.callback = callback
        self._lock = threading.Lock()

    def _emit(self, event: RunEvent) -> None:
        with self._lock:
            self.callback(event)

    def flush(self) -> None:
        """Every event is handed over when it happens: nothing to do."""

    def run_started(self, recipe: str, instances: int, concurrency: int) -> None:
        self._emit(RunEvent("run_started", recipe=recipe, instances=instances,
                            concurrency=concurrency))

    def step_started(self, instance_id: str) -> None:
        self._emit(RunEvent("step_started", instance=instance_id))

    def step_finished(self, result: StepResult) -> None:
        self._emit(RunEvent("step_finished", instance=result.instance_id, result=result))

    def note(self, message: str) -> None:
        self._emit(RunEvent("note", message=message))

    def run_finished(self, result: RunResult) -> None:
        self._emit(RunEvent("run_finished", recipe=result.recipe, run=result))


def append_step_summary(result: RunResult) -> None:
    """In GitHub Actions, add the run's Markdown summary to the job's page."""
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown_summary(result))
    except OSError:
        pass  # a summary is a courtesy; never fail a run over it
