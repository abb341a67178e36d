"""What changed between two renderings of an instance, in words a reviewer reads:
`with.prompt: "Logo for Acme" → "Logo for Globex"`, `with.image: uploaded file changed`."""

from __future__ import annotations

import json
from typing import Any


def show(value: Any, width: int = 80) -> str:
    """A value as JSON, cut to ``width`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[:width - 1] + "…"


def param_changes(old: Any, new: Any, path: str = "with") -> list[str]:
    """Every difference between two parameter trees (uploaded files compared by sha256)."""
    found: list[str] = []
    _diff(old, new, path, found)
    return found


def _diff(old: Any, new: Any, path: str, found: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        if set(old) == {"sha256"} and set(new) == {"sha256"}:
            if old != new:
                found.append(f"{path}: uploaded file changed (sha256 {old['sha256'][:12]}… → "
                             f"{new['sha256'][:12]}…)")
            return
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else key
            if key not in old:
                found.append(f"{where}: added ({show(new[key])})")
            elif key not in new:
                found.append(f"{where}: removed (was {show(old[key])})")
            else:
                _diff(old[key], new[key], where, found)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{index}]", found)
    elif isinstance(old, str) and isinstance(new, str) and len(old) + len(new) > 80:
        found.append(f"{path}: {_excerpt(old, new)}")
    elif old != new:
        found.append(f"{path}: {show(old)} → {show(new)}")


def _excerpt(old: str, new: str, context: int = 16) -> str:
    """Two long strings by the part that differs, with a little context either side."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1

    def cut(text: str) -> str:
        head = "…" if start > context else ""
        tail = "…" if end > context else ""
        middle = text[max(0, start - context):len(text) - max(0, end - context)]
        return json.dumps(head + middle + tail, ensure_ascii=False)

    return f"{cut(old)} → {cut(new)}"
