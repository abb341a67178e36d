"""JSON helpers shared across modules: the one canonical form. Leaf: no internal imports."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same value always gives the same text.

    Used for cache keys, stamp names and de-duplication. Values JSON cannot express (a YAML
    date, say) are written as their ``str``.
    """
    return _CANONICAL.encode(value)


# made once: json.dumps with options builds an encoder per call (a plan of 100,000
# instances computes 100,000 keys)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              default=str)
