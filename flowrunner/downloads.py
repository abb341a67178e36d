"""Artifacts into the cache: stream, cap, hash, verify the file type, rename into place.

A file is stored only when it is whole and is what it claims to be (PNG, JPEG, WEBP, GIF
or SVG, checked by signature and end marker); anything else is a DownloadError.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .cache import Cache
from .errors import DownloadError, TransportError
from .http import Client
from .limits import max_artifact_bytes

DOWNLOAD_ATTEMPTS = 3

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
              "image/gif": "gif", "image/svg+xml": "svg", "image/x-icon": "ico"}


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified file in the cache's objects/."""

    sha256: str
    bytes: int
    media_type: str
    ext: str
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"sha256": self.sha256, "bytes": self.bytes,
                                "media_type": self.media_type, "ext": self.ext}
        if self.width:
            data["width"], data["height"] = self.width, self.height
        return data


def sniff(head: bytes) -> str | None:
    """The media type the first bytes announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"\x00\x00\x01\x00" and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "image/x-icon"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    if text.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head.lower():
        return "image/svg+xml"
    return None


def _incomplete(media_type: str, head: bytes, tail: bytes, size: int) -> str | None:
    if media_type == "image/png":
        if len(head) < 24 or head[12:16] != b"IHDR":
            return "PNG header is damaged"
        if not tail.endswith(b"IEND\xaeB`\x82"):
            return "PNG ends before its IEND chunk (truncated)"
    elif media_type == "image/jpeg":
        if not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return "JPEG ends before its end marker (truncated)"
    elif media_type == "image/webp":
        declared = struct.unpack("<I", head[4:8])[0] + 8
        if declared != size:
            return f"WEBP says {declared} bytes but has {size} (truncated)"
    elif media_type == "image/gif":
        if not tail.endswith(b";"):
            return "GIF ends before its trailer (truncated)"
    elif media_type == "image/svg+xml":
        if not tail.rstrip().lower().endswith(b"</svg>"):
            return "SVG ends before </svg> (truncated)"
    return None


def _dimensions(media_type: str, head: bytes) -> tuple[int | None, int | None]:
    if media_type == "image/png" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if media_type == "image/webp" and head[12:16] == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None, None


def _classify(path: Path, size: int, claimed: str | None, origin: str) -> tuple[str, int | None,
                                                                               int | None]:
    with open(path, "rb") as handle:
        head = handle.read(4096)
        handle.seek(max(0, size - 64))
        tail = handle.read(64)
    actual = sniff(head)
    if actual is None:
        preview = head[:16]
        raise DownloadError(f"{origin} is not an image (starts with {preview!r})",
                            hint="the provider returned something else; run again later")
    if claimed and claimed in EXTENSIONS and claimed != actual:
        raise DownloadError(f"{origin} claims to be {claimed} but is {actual}",
                            retryable=False)
    problem = _incomplete(actual, head, tail, size)
    if problem:
        raise DownloadError(f"{origin}: {problem}", hint="run again: the file is fetched anew")
    width, height = _dimensions(actual, head)
    return actual, width, height


def _adopt(cache: Cache, temp: Path, sha256: str, size: int, claimed: str | None,
           origin: str) -> Artifact:
    media_type, width, height = _classify(temp, size, claimed, origin)
    cache.adopt_object(temp, sha256)
    return Artifact(sha256=sha256, bytes=size, media_type=media_type,
                    ext=EXTENSIONS[media_type], width=width, height=height)


def check_url(url: Any, origin: str) -> str:
    """Refuse anything that is not an http(s) URL.

    Raises:
        DownloadError: another scheme (file:, ftp:, data: …) or no host.
    """
    if not isinstance(url, str):
        raise DownloadError(f"{origin}: artifact URL is not a string: {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"{origin}: refusing artifact URL {url[:80]!r}",
                            hint="only http(s) URLs are downloaded")
    return url


def fetch_artifact(client: Client, cache: Cache, url: str, *, deadline: float,
                   origin: str, max_bytes: int | None = None) -> Artifact:
    """Download ``url`` into the cache, verified; retried when truncated.

    Raises:
        DownloadError: after DOWNLOAD_ATTEMPTS broken, oversized or mislabelled downloads.
        TransportError: the server could not be reached.
    """
    check_url(url, origin)
    max_bytes = max_artifact_bytes() if max_bytes is None else max_bytes
    last: Exception | None = None
    for _attempt in range(DOWNLOAD_ATTEMPTS):
        if time.monotonic() > deadline:
            break
        try:
            return _fetch_once(client, cache, url, deadline=deadline, origin=origin,
                               max_bytes=max_bytes)
        except DownloadError as exc:
            last = exc
            if not exc.retryable:
                raise
        except TransportError as exc:
            last = exc
    assert last is not None or time.monotonic() > deadline
    if last is None:
        raise DownloadError(f"{origin}: the step's timeout ran out while downloading")
    raise last


def _fetch_once(client: Client, cache: Cache, url: str, *, deadline: float, origin: str,
                max_bytes: int) -> Artifact:
    handle, temp = cache.temp_file()
    try:
        with handle, client.stream(url, timeout=max(1.0, deadline - time.monotonic())) as (
                status, headers, chunks):
            if status != 200:
                raise DownloadError(f"{origin}: download answered HTTP {status}")
            declared = headers.get("Content-Length")
            expected = int(declared) if declared and declared.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise DownloadError(f"{origin}: artifact is larger than the cap "
                                    f"({expected:,} > {max_bytes:,} bytes)", retryable=False)
            digest = hashlib.sha256()
            size = 0
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{origin}: artifact is larger than the cap "
                                        f"({max_bytes:,} bytes)", retryable=False)
                if time.monotonic() > deadline:
                    raise DownloadError(f"{origin}: download too slow; the step's timeout ran out",
                                        hint="raise the step's `timeout`")
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            if expected is not None and size != expected:
                raise DownloadError(f"{origin}: download truncated ({size:,} of {expected:,} "
                                    "bytes)", hint="run again: the file is fetched anew")
            claimed = headers.get("Content-Type", "").split(";")[0].strip().lower() or None
        return _adopt(cache, temp, digest.hexdigest(), size, claimed, origin)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def store_b64(cache: Cache, data: str, *, origin: str) -> Artifact:
    """Decode a ``b64_json`` artifact into the cache, verified."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DownloadError(f"{origin}: b64_json is not valid base64") from None
    return store_bytes(cache, raw, origin=origin)


def store_bytes(cache: Cache, raw: bytes, *, origin: str) -> Artifact:
    """Store bytes made here (a decoded b64_json, a local image step's output), verified."""
    if len(raw) > max_artifact_bytes():
        raise DownloadError(f"{origin}: artifact is larger than the cap", retryable=False)
    handle, temp = cache.temp_file()
    try:
        with handle:
            handle.write(raw)
        return _adopt(cache, temp, hashlib.sha256(raw).hexdigest(), len(raw), None, origin)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def describe_file(path: Path) -> tuple[str, str]:
    """(media type, extension) of a local image file, by its signature.

    Raises:
        DownloadError: the file is not a recognised image.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    media_type = sniff(head)
    if media_type is None:
        raise DownloadError(f"{path} is not a PNG, JPEG, WEBP, GIF or SVG image")
    return media_type, EXTENSIONS[media_type]
