"""Provider identity and credentials: which service a call goes to, and its API key.

The identity (a normalised base URL, or the emulator's fixed name under --mock) is part of
every cache key, so results never cross providers. The key is read from the environment
variable the recipe names and never stored anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MOCK_PROVIDER = "flowrunner-emulator"


@cache  # a pure function of its text, asked once per instance of every plan and run
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


def is_mock_identity(identity: str | None) -> bool:
    """Whether a recorded provider identity is the emulator's (a `--mock` lock file)."""
    return bool(identity) and (identity == MOCK_PROVIDER
                               or str(identity).startswith(MOCK_PROVIDER + "/"))


def api_key_from_env(name: str) -> str | None:
    """The API key in environment variable ``name``, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


DEFAULT_PROFILE = "default"
KIND_BY_HOST = (("bfl.ai", "bfl"), ("recraft.ai", "recraft"))


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider profile: where calls go, how they authenticate, what kind of API it is.

    ``auth`` is `bearer` (`Authorization: Bearer KEY`, the default), `raw`
    (`Authorization: KEY`) or a header name (`x-key: KEY`).
    """

    name: str
    base_url: str
    api_key_env: str
    kind: str = "gateway"
    auth: str = "bearer"
    auth_header: str = "Authorization"
    rate_limit: float | None = None
    max_in_flight: int | None = None  # tasks submitted and not yet finished, at most

    def credential(self, key: str) -> tuple[str, str]:
        """(header, value) that carries ``key``."""
        if self.auth == "bearer":
            return self.auth_header, f"Bearer {key}"
        return self.auth_header, key

    def identity(self, *, mock: bool) -> str:
        """What the cache key says about this provider (never a random emulator port)."""
        if mock:
            return MOCK_PROVIDER if self.kind == "gateway" else f"{MOCK_PROVIDER}/{self.kind}"
        return normalise_base_url(self.base_url)


def guess_kind(base_url: str) -> str:
    """A profile's kind when it does not say: by the host, else the gateway."""
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, kind in KIND_BY_HOST:
        if host == suffix or host.endswith("." + suffix):
            return kind
    return "gateway"


def make_provider(name: str, doc: dict[str, Any], *, default_url: str,
                  default_key_env: str) -> Provider:
    """A profile from its (schema-checked) recipe mapping."""
    base_url = doc.get("base_url") if isinstance(doc.get("base_url"), str) else default_url
    auth = doc.get("auth", "bearer")
    header = "Authorization"
    if isinstance(auth, dict):
        header, auth = str(auth.get("header", "Authorization")), "header"
    rate = doc.get("rate_limit")
    return Provider(
        name=name, base_url=str(base_url),
        api_key_env=str(doc.get("api_key_env") or default_key_env),
        kind=str(doc.get("kind") or guess_kind(str(base_url))),
        auth=auth if auth in ("bearer", "raw", "header") else "bearer", auth_header=header,
        rate_limit=float(rate) if isinstance(rate, (int, float)) and rate > 0 else None,
        max_in_flight=_positive_int(doc.get("max_in_flight")))


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


@dataclass(frozen=True, slots=True)
class Route:
    """Where one profile's calls go in this run (its base URL, or the emulator's under
    --mock) and the provider identity its cache keys carry."""

    base_url: str
    identity: str
