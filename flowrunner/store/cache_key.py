"""The cache key: what makes two calls the same call.

Key = sha256 of the canonical JSON of the key material: the cache format version, the
provider identity, the endpoint id, method, path and the rendered parameters with every
uploaded file replaced by its sha256 (DESIGN.md §5). Never the API key, never headers.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .._json import canonical_json

# Bump when the key material or the result format changes meaning: old entries then miss.
CACHE_VERSION = 1


def key_material(*, provider: str, endpoint: str, method: str, path: str,
                 params: dict[str, Any]) -> dict[str, Any]:
    """The material a key is the digest of; ``params`` already has files as ``{sha256}``."""
    return {"v": CACHE_VERSION, "provider": provider, "endpoint": endpoint,
            "method": method, "path": path, "params": params}


def cache_key(material: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``material`` (see `key_material`).

    Example:
        >>> cache_key({"a": 1}) == cache_key({"a": 1})
        True
    """
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()
