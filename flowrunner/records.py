"""Records read back from a store, checked once before any of their fields is used.

A cache entry, a shared store's entry, a task journal, a claim, a lock file and a run stamp
are all written by flowrunner, but read from places other people and programs can write
to: a shared folder, a bucket, a restored CI cache, a pull request's lock file. A field
that becomes a path (an artifact's sha256 names its object, a lock file's `path` names a
saved file) is only used once it has passed the checks here; a record that fails them is
treated as not there, with the reason, never followed.

Leaf module: imports nothing from flowrunner.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypedDict, TypeGuard

_HEX64 = re.compile(r"[0-9a-f]{64}")
_EXT = re.compile(r"[a-z0-9]{1,10}")
MAX_TASK_ID = 512  # characters: a provider's task id is an id, not a document


class ArtifactRecord(TypedDict, total=False):
    """One stored file of a cache entry (its object is `objects/<sha256[:2]>/<sha256>`)."""

    sha256: str
    bytes: int
    media_type: str
    ext: str
    width: int | None
    height: int | None
    role: str  # "poster": a cover image beside the files, not one of them


class CacheEntry(TypedDict, total=False):
    """A result in the cache, as `entry_problem` lets it be used: the call's answer, its
    outputs and files, under the cache key that names it."""

    format: int
    key: str
    endpoint: str
    instance: str
    material: dict[str, Any]  # what the cache key is the digest of
    response: Any  # the provider's answer, the API key redacted
    outputs: dict[str, Any]
    credits: float
    credits_estimated: bool  # the answer named no cost: `credits` is the catalog's price
    artifacts: list[ArtifactRecord]
    task_id: str  # the provider's task, for a submit-then-poll call
    signature: str  # a shared store's HMAC (store/remote.py)


def is_sha256(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a sha256 as flowrunner writes it: 64 lowercase hex digits (a
    cache object's name, a cache key)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def is_size(value: object) -> bool:
    """A byte count: a non-negative int (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def relative_path(value: object) -> str | None:
    """``value`` when it is a relative path in `/` form that stays inside the folder it is
    relative to: no absolute path, no drive, no `..`, `.` or empty part, no backslash or
    NUL; else None."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    if "\\" in value or "\0" in value or value.startswith("/") or re.match(r"[A-Za-z]:", value):
        return None
    if any(part in ("", ".", "..") for part in value.split("/")):
        return None
    return value


def artifact_problem(artifact: object, *, with_path: bool = False) -> str | None:
    """Why an artifact record (of a cache entry, or with ``with_path`` of a lock file) may
    not be used; None when it may."""
    if not isinstance(artifact, dict):
        return "an artifact is not a mapping"
    sha = artifact.get("sha256")
    if not is_sha256(sha):
        return f"an artifact's sha256 {str(sha)[:80]!r} is not 64 lowercase hex digits"
    if not is_size(artifact.get("bytes")):
        return f"artifact {sha[:12]}…: its size {artifact.get('bytes')!r} is not a byte count"
    ext = artifact.get("ext")
    if ext is not None and not (isinstance(ext, str) and _EXT.fullmatch(ext)):
        return f"artifact {sha[:12]}…: its extension {str(ext)[:40]!r} is not a plain one"
    role = artifact.get("role")
    if role is not None and role != "poster":
        return f"artifact {sha[:12]}…: unknown role {str(role)[:40]!r}"
    if with_path and "path" in artifact and relative_path(artifact["path"]) is None:
        return (f"artifact {sha[:12]}…: its path {str(artifact['path'])[:120]!r} is not a "
                "relative path inside the recipe's folder")
    return None


def entry_problem(entry: object, key: str, *, version: int) -> str | None:
    """Why a cache entry read for ``key`` may not be used (None when it may): it must be
    a mapping of this cache ``version`` naming ``key`` (an entry copied under another
    key's name is refused), with well-formed artifacts."""
    if not isinstance(entry, dict):
        return "it is not a JSON object"
    if entry.get("format") != version:
        return f"it is in cache format {entry.get('format')!r}, not {version}"
    if entry.get("key") != key:
        return "it names another key"
    artifacts = entry.get("artifacts", [])
    if not isinstance(artifacts, list):
        return "its artifacts are not a list"
    for artifact in artifacts:
        problem = artifact_problem(artifact)
        if problem:
            return problem
    return None


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A call's journal, kept until its result is stored: the provider's task id and where
    to poll it (a submitted task), or the paid answer itself (a call whose answer could
    not be stored: the next run takes it from here instead of paying again)."""

    id: str | None
    poll_url: str | None = None
    endpoint: str | None = None
    answer: dict[str, Any] | None = None

    @classmethod
    def parse(cls, data: object) -> TaskRecord | None:
        """The record, or None when ``data`` is not a usable journal."""
        if not isinstance(data, dict):
            return None
        task_id, poll_url, endpoint = data.get("id"), data.get("poll_url"), data.get("endpoint")
        answer = data.get("answer")
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > MAX_TASK_ID \
                or any(ord(c) < 32 for c in task_id):
            task_id = None
        if not isinstance(answer, dict):
            answer = None
        if task_id is None and answer is None:
            return None
        if poll_url is not None and not (isinstance(poll_url, str) and poll_url.startswith(
                ("http://", "https://")) and len(poll_url) <= 4096):
            poll_url = None  # polled through the gateway's route instead
        return cls(task_id, poll_url, endpoint if isinstance(endpoint, str) else None, answer)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"endpoint": self.endpoint}
        if self.id is not None:
            data.update(id=self.id, poll_url=self.poll_url)
        if self.answer is not None:
            data["answer"] = self.answer
        return data


@dataclass(frozen=True, slots=True)
class Claim:
    """A shared store's claim: who calls a key, until when (seconds since the epoch)."""

    owner: str
    expires: float

    @classmethod
    def parse(cls, raw: bytes | None) -> Claim | None:
        """The claim, or None when ``raw`` is absent, empty or unreadable."""
        import json

        try:
            data = json.loads(raw or b"")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        owner, expires = data.get("owner"), data.get("expires")
        if not isinstance(owner, str) or isinstance(expires, bool) or \
                not isinstance(expires, (int, float)) or not math.isfinite(expires):
            return None
        return cls(owner, float(expires))
