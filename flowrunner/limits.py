"""Size limits that users may raise through the environment, read when used (not at
import), so a bad value is a clear usage error instead of a crash."""

from __future__ import annotations

import os

from .errors import UsageError


def megabytes_from_env(name: str, default: int) -> int:
    """``$name`` as a byte count (the variable holds whole megabytes), else ``default`` MB.

    Raises:
        UsageError: the variable is set to something that is not a positive whole number.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default * 1024 * 1024
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"{name}={raw!r} is not a positive whole number of megabytes",
                         hint=f"for example: export {name}={default}")
    return value * 1024 * 1024


def max_answer_bytes() -> int:
    """The largest JSON answer read from a provider (FLOW_MAX_ANSWER_MB, default 32)."""
    return megabytes_from_env("FLOW_MAX_ANSWER_MB", 32)


def max_artifact_bytes() -> int:
    """The largest artifact downloaded (FLOW_MAX_ARTIFACT_MB, default 512)."""
    return megabytes_from_env("FLOW_MAX_ARTIFACT_MB", 512)
