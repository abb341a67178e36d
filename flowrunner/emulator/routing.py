"""The emulator's routes as data: each provider family lists its `Rule`s beside its contract
(kling.py's `ROUTES`, …); server.py tries them in order and answers 404 when none matches.

A rule names the kinds of provider that serve it, the HTTP method (or "*"), a matcher that
reads the path (and query) into named parts, the operation recorded for the request, and
the handler, called with the exchange and the `Request`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

# path, query → named parts of the route, or None when it is not this route
Matcher = Callable[[str, str], "dict[str, str] | None"]


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One request as a route's handler sees it."""

    method: str
    path: str
    query: str
    body: bytes
    record: dict[str, Any]  # what /_emulator/requests shows of it (handlers add to it)
    parts: dict[str, str]  # the matcher's named parts


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    method: str  # "GET", "POST", or "*" (the handler answers other methods itself)
    match: Matcher
    operation: str  # recorded as the request's operation; `{name}` takes a named part
    handle: Callable[[Any, Request], None]  # (the exchange, the request)
    kinds: frozenset[str] = frozenset({"gateway"})
    # a task submit: the provider's answer when the key has too many tasks running
    busy: Callable[[Any], None] | None = None

    def parts(self, kind: str, method: str, path: str, query: str) -> dict[str, str] | None:
        if kind not in self.kinds or self.method not in ("*", method):
            return None
        return self.match(path, query)


def pattern(regex: str) -> Matcher:
    """A path matching ``regex`` whole; its named groups are the parts (None → "")."""
    compiled = re.compile(regex)

    def match(path: str, _query: str) -> dict[str, str] | None:
        found = compiled.fullmatch(path)
        return None if found is None else {k: v or "" for k, v in found.groupdict().items()}

    return match


def exact(path: str) -> Matcher:
    return pattern(re.escape(path))


def find(rules: tuple[Rule, ...], kind: str, method: str, path: str,
         query: str) -> tuple[Rule, dict[str, str]] | None:
    """The first rule serving this request, with its parts."""
    for rule in rules:
        parts = rule.parts(kind, method, path, query)
        if parts is not None:
            return rule, parts
    return None
