"""The one exception hierarchy of flowrunner, plus the Location and Issue value types.

Leaf module: imports nothing from flowrunner. The CLI maps each branch to its exit status
(DESIGN.md §6)::

    FlowError                  root
    ├── UsageError             the command line is wrong (exit 2)
    ├── UnknownEndpointError   `uses` names no catalog endpoint (exit 3)
    ├── TemplateProblem        a template cannot be parsed or rendered (located by the caller)
    ├── NoSuchSchemaError      a schema file is not shipped with this installation
    ├── SpecError              the recipe is wrong; carries .issues (exit 3)
    │   └── SpecSyntaxError    YAML could not be read
    ├── RunError               the recipe is valid, a step failed at run time (exit 1)
    │   ├── StepFailed         the call happened and its answer was bad
    │   │   ├── TaskFailed     a submitted task ended in a failure status
    │   │   └── RenderFailed   a template or rendered parameter is wrong at run time
    │   ├── BudgetExceeded     a call would take the run past its credit budget
    │   ├── TransportError     the call could not happen (connect, timeout)
    │   ├── DownloadError      an artifact was truncated, oversized or not what it claims
    │   └── Cancelled          the run was interrupted while this instance waited
    ├── FrozenError            `--frozen` found work to do (exit 4)
    ├── CacheError             a cache entry is corrupt or unreadable
    └── Interrupted            SIGINT / SIGTERM stopped the run (exit 130 / 143)

An error that is none of these is a bug: the CLI writes a crash log and exits with
EXIT_CRASH (70).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Location(NamedTuple):
    """A position in a file, 1-based; prints as ``path:line:col``."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a recipe: where, what, and what to do about it."""

    location: Location
    message: str
    hint: str | None = None
    severity: str = "error"

    def format(self) -> str:
        """``FILE:LINE:COL: error: message`` and an indented hint, one line each."""
        text = f"{self.location}: {self.severity}: {_one_line(self.message)}"
        if self.hint:
            text += f"\n  hint: {_one_line(self.hint)}"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.location.path,
            "line": self.location.line,
            "col": self.location.col,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.path, self.location.line, self.location.col, self.message)


def format_issues(issues: list[Issue], *, limit: int = 200) -> str:
    """Every issue on its own line (with its hint), sorted by place; the rest counted."""
    ordered = sorted(issues, key=Issue.sort_key)
    lines = [issue.format() for issue in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(f"... and {len(ordered) - limit} more errors")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """Control characters from a recipe must not break the one-line-per-problem format."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class FlowError(Exception):
    """Root of every error flowrunner raises on purpose."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint


class UsageError(FlowError):
    """Raised when the command line asks for something impossible (unknown step, bad --var)."""

    exit_code = 2


class UnknownEndpointError(FlowError):
    """Raised when `uses` names no catalog endpoint; .suggestion holds the nearest id."""

    exit_code = 3

    def __init__(self, endpoint_id: str, suggestion: str | None) -> None:
        hint = (f"did you mean {suggestion}?" if suggestion
                else "`flow endpoints` lists every endpoint")
        super().__init__(f"unknown endpoint {endpoint_id!r}", hint=hint)
        self.suggestion = suggestion


class TemplateProblem(FlowError):
    """Raised when a template cannot be parsed or rendered; .line is relative to the template
    text and .path says where inside a nested value. Callers turn it into a located error."""

    exit_code = 3

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.path: tuple[str | int, ...] = ()


class NoSuchSchemaError(FlowError):
    """Raised when a schema file is not shipped with this installation."""


class SpecError(FlowError):
    """Raised when a recipe is invalid; carries every issue found, sorted by location."""

    exit_code = 3

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(issues, key=Issue.sort_key)
        first = self.issues[0] if self.issues else None
        super().__init__(first.format() if first else "invalid recipe",
                         hint=first.hint if first else None)


class SpecSyntaxError(SpecError):
    """Raised when the recipe file cannot be read as UTF-8 YAML holding a mapping."""


class RunError(FlowError):
    """Raised when a valid recipe's step fails at run time; recorded in the step's result."""

    exit_code = 1


class StepFailed(RunError):
    """Raised when a call was answered but the answer is an error or unusable."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = retryable


class TaskFailed(StepFailed):
    """Raised when a submitted task ended in a failure status (refused, moderated, failed):
    it is over, so a re-run submits anew instead of resuming it."""


class TaskTroubled(StepFailed):
    """Raised when a task's poll answers kept saying something is wrong without ending it
    (a rate limit relayed in MiniMax's `base_resp`): the task stays journaled once; a
    resumed task that still answers so is forgotten."""


class RenderFailed(StepFailed):
    """Raised when a step's templates or rendered parameters are wrong at run time."""


class BudgetExceeded(RunError):
    """Raised when starting a call would take the run past its credit budget."""


class TransportError(RunError):
    """Raised when a call could not be made or finished: refused, reset, timed out.

    ``maybe_sent`` is True when the request may have reached the provider (the connection
    broke after the request was written): a paid submit must then not be sent again.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 maybe_sent: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.maybe_sent = maybe_sent


class DownloadError(RunError):
    """Raised when an artifact download is truncated, too big, or not the file type it claims.

    ``retryable`` is False when fetching again cannot help (too big, the wrong type).
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 retryable: bool = True) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class Cancelled(RunError):
    """Raised inside a worker when the run is interrupted: its wait (a poll's pause, a
    backoff, a slot, a lock, a claim) ends at once. A submitted task stays journaled."""


class FrozenError(FlowError):
    """Raised by `flow run --frozen` when some step instance is not in the cache."""

    exit_code = 4


class CacheError(FlowError):
    """Raised when a cache entry cannot be read or written."""

    exit_code = 1
    hint = "`flow cache clear` removes the cache; every entry is rebuilt on the next run"


class Interrupted(FlowError):
    """Raised when the run was stopped by SIGINT (exit 130) or SIGTERM (exit 143)."""

    exit_code = 130

    def __init__(self, message: str, *, signal_number: int | None = None,
                 hint: str | None = "finished steps are cached; run again to resume") -> None:
        super().__init__(message, hint=hint)
        if signal_number:
            self.exit_code = 128 + signal_number
