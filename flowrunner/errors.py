"""The one exception hierarchy of flowrunner, plus the Location and Issue value types.

Leaf module: imports nothing from flowrunner. The CLI maps each branch to its exit status
(DESIGN.md §6)::

    FlowError                  root
    ├── UsageError             the command line is wrong (exit 2)
    ├── SpecError              the recipe is wrong; carries .issues (exit 3)
    │   ├── SpecSyntaxError    YAML could not be read
    │   ├── TemplateError      a template could not be parsed or rendered
    │   └── PlanError          unknown reference, cycle
    │       └── CycleError     .cycle = ("a", "b", "a")
    ├── RunError               the recipe is valid, a step failed at run time (exit 1)
    │   ├── StepFailed         the call happened and its answer was bad
    │   ├── TransportError     the call could not happen (connect, timeout)
    │   └── DownloadError      an artifact was truncated, oversized or not what it claims
    ├── FrozenError            `--frozen` found work to do (exit 4)
    └── CacheError             a cache entry is corrupt or unreadable
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


class TemplateError(SpecError):
    """Raised when a template cannot be parsed, or rendering it fails (undefined name, too big)."""


class PlanError(SpecError):
    """Raised when the step graph is wrong: unknown references, unknown `needs`."""


class CycleError(PlanError):
    """Raised when steps depend on each other in a circle; .cycle lists it, first node repeated."""

    def __init__(self, issues: list[Issue], cycle: tuple[str, ...]) -> None:
        super().__init__(issues)
        self.cycle = cycle


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


class TransportError(RunError):
    """Raised when a call could not be made or finished: refused, reset, timed out."""


class DownloadError(RunError):
    """Raised when an artifact download is truncated, too big, or not the file type it claims."""


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

    def __init__(self, message: str, *, signal_number: int | None = None) -> None:
        super().__init__(message, hint="finished steps are cached; run again to resume")
        if signal_number:
            self.exit_code = 128 + signal_number
