"""JSON type aliases shared across modules. Leaf: no internal imports."""

from __future__ import annotations

from typing import Any, Union

JSON = Union[dict[str, Any], list[Any], str, int, float, bool, None]
JSONObject = dict[str, Any]
