"""Provider identity and credentials: which service a call goes to, and its API key.

The identity (a normalised base URL, or the emulator's fixed name under --mock) is part of
every cache key, so results never cross providers. The key is read from the environment
variable the recipe names and never stored anywhere.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

MOCK_PROVIDER = "flowrunner-emulator"


def normalise_base_url(url: str) -> str:
    """The provider identity of a base URL: lower-case scheme and host, no trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def provider_identity(base_url: str, *, mock: bool) -> str:
    """What the cache key says about the provider: never a random emulator port."""
    return MOCK_PROVIDER if mock else normalise_base_url(base_url)


def recorded_provider(base_url: str, *, mock: bool, locked: str | None) -> str:
    """The provider that `status` and `why` compare against: --mock, else the one the lock
    file was made with (a `--mock` lock stays a `--mock` lock), else the recipe's."""
    if mock:
        return MOCK_PROVIDER
    return locked or normalise_base_url(base_url)


def api_key_from_env(name: str) -> str | None:
    """The API key in environment variable ``name``, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None
