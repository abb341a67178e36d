"""Models with a lifecycle: what a catalog entry knows of each model its provider serves,
as data (`"models"` in an entry), and what that means on a given day.

A model may carry `deprecated: DATE` (the provider announced its end, or advises against
it), `retired: DATE` (the day the provider says it stops serving it), `gone: DATE` (the day
we found it missing from the provider's own model list, with no announced date) and
`successor` (what to use instead), each with the `source` that says so. On a day before
`retired`, a model with `deprecated` or `retired` is *deprecated* (a warning); from
`retired` on, it is *retired* (an error: a paid run would fail). A `gone` model is a
warning, never an error: nobody announced its end, so we do not invent a date. A model the
entry does not list is not judged: gateways serve more than any list.

Today is the machine's date, or `FLOW_TODAY` (YYYY-MM-DD) to see what a future day
breaks: `FLOW_TODAY=2027-01-07 flow validate recipes/*.yaml`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

TODAY_ENV = "FLOW_TODAY"


def today() -> datetime.date:
    """The date models are judged by (`FLOW_TODAY`, else the machine's).

    Raises:
        UsageError: FLOW_TODAY is not a YYYY-MM-DD date.
    """
    text = os.environ.get(TODAY_ENV)
    if not text:
        return datetime.date.today()
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{TODAY_ENV}={text!r} is not a date",
                         hint="write it as YYYY-MM-DD, or unset it") from None


@dataclass(frozen=True, slots=True)
class Model:
    """What an entry knows of one model."""

    name: str
    source: str
    deprecated: datetime.date | None = None
    retired: datetime.date | None = None
    successor: str | None = None
    gone: datetime.date | None = None

    @classmethod
    def from_dict(cls, name: str, doc: dict[str, Any]) -> Model:
        """A model from its (schema-checked) entry document."""
        def day(key: str) -> datetime.date | None:
            return datetime.date.fromisoformat(doc[key]) if doc.get(key) else None

        return cls(name, str(doc.get("source", "")), day("deprecated"), day("retired"),
                   doc.get("successor"), day("gone"))

    def state(self, on: datetime.date) -> str:
        """"current", "deprecated", "gone" (missing from the provider's list) or "retired"
        on day ``on``."""
        if self.retired is not None and self.retired <= on:
            return "retired"
        if self.retired is not None or (self.deprecated is not None and self.deprecated <= on):
            return "deprecated"
        if self.gone is not None and self.gone <= on:
            return "gone"
        return "current"

    def problem(self, on: datetime.date) -> tuple[str, str, str | None] | None:
        """(severity, message, hint) of using this model on day ``on``; None when current."""
        state = self.state(on)
        if state == "current":
            return None
        instead = f"; use {self.successor}" if self.successor else ""
        if state == "retired":
            assert self.retired is not None
            advice = "" if self.successor else "no successor is known: pick another model " \
                "or provider, or override the entry with `catalog:` if yours still serves it. "
            return ("error", f"{self.name} was shut down on {self.retired.isoformat()}{instead}",
                    f"{advice}The provider no longer serves it, so a paid run would fail "
                    f"({self.source})")
        if state == "deprecated":
            when = f"shuts down on {self.retired.isoformat()}" if self.retired is not None \
                else f"is deprecated since {self.deprecated.isoformat()}"  # type: ignore[union-attr]
            advice = "" if self.successor else "no successor is known: plan another model " \
                "or provider before then. "
            return ("warning", f"{self.name} {when}{instead}", f"{advice}({self.source})")
        assert self.gone is not None
        advice = "" if self.successor else "no successor is known: pick another model or " \
            "provider, or override the entry with `catalog:` if yours still serves it. "
        return ("warning", f"{self.name} is no longer in the provider's model list (checked "
                f"{self.gone.isoformat()}), so a paid run may fail{instead}",
                f"{advice}({self.source})")

    def describe(self, on: datetime.date) -> str:
        """One line for `flow endpoints --models`: name, state, the day that matters, and
        what to use instead."""
        state = self.state(on)
        if state == "retired":
            assert self.retired is not None
            detail = f"since {self.retired.isoformat()}"
        elif state == "deprecated":
            detail = f"shuts down {self.retired.isoformat()}" if self.retired else \
                f"since {self.deprecated.isoformat()}"  # type: ignore[union-attr]
        elif state == "gone":
            assert self.gone is not None
            detail = f"unlisted since {self.gone.isoformat()}"
        else:
            detail = ""
        successor = f" → {self.successor}" if self.successor and state != "current" else ""
        return f"{self.name:<34} {state:<10} {detail}{successor}".rstrip()
