"""Artifacts into the cache: stream, cap, hash, verify the file type, rename into place.

A file is stored only when it is whole and is what it claims to be (an image, video or
audio file, checked by signature and structure in media/formats.py); anything else is a
DownloadError.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ..errors import DownloadError, TransportError
from ..limits import max_artifact_bytes
from ..media.formats import EXTENSIONS, KINDS, dimensions, incomplete, sniff
from ..net.http import Client
from ..records import ArtifactRecord
from ..store.cache import Cache, write_all

DOWNLOAD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Artifact:
    """A verified file in the cache's objects/."""

    sha256: str
    bytes: int
    media_type: str
    ext: str
    width: int | None = None
    height: int | None = None
    role: str | None = None  # "poster": a cover image beside the files, not one of them

    def to_json(self) -> ArtifactRecord:
        data: ArtifactRecord = {"sha256": self.sha256, "bytes": self.bytes,
                                "media_type": self.media_type, "ext": self.ext}
        if self.width:
            data["width"], data["height"] = self.width, self.height
        if self.role:
            data["role"] = self.role
        return data


def _classify(handle: BinaryIO, size: int, claimed: str | None, origin: str
              ) -> tuple[str, int | None, int | None]:
    """(media type, width, height) of the file open in ``handle``.

    Raises:
        DownloadError: not a media file, mislabelled, or not whole.
    """
    handle.seek(0)
    head = handle.read(4096)
    actual = sniff(head)
    if actual is None:
        preview = head[:16]
        raise DownloadError(f"{origin} is not an image, video or audio file (starts with "
                            f"{preview!r})", hint="the provider returned something "
                            "else; run again later")
    # images are labelled precisely; audio and video types have many spellings
    # (audio/x-wav, video/mp4 for an m4a…): only an image's label is held to its bytes
    if claimed and claimed.startswith("image/") and actual.startswith("image/") and \
            claimed in EXTENSIONS and claimed != actual:
        raise DownloadError(f"{origin} claims to be {claimed} but is {actual}",
                            retryable=False)
    problem = incomplete(actual, handle, size, head=head)
    if problem:
        raise DownloadError(f"{origin}: {problem}", hint="run again: the file is fetched anew")
    width, height = dimensions(actual, head)
    return actual, width, height


def _adopt(cache: Cache, handle: BinaryIO, temp: Path, sha256: str, size: int,
           claimed: str | None, origin: str) -> Artifact:
    """Check the temp file open in ``handle`` and move it into the cache."""
    handle.flush()
    media_type, width, height = _classify(handle, size, claimed, origin)
    cache.adopt_object(temp, sha256, handle)
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
                   origin: str, max_bytes: int | None = None,
                   provider: str | None = None) -> Artifact:
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
                               max_bytes=max_bytes, provider=provider)
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


_WRITE_BLOCK = 256 * 1024  # a download's bytes are written in blocks of about this size


def _fetch_once(client: Client, cache: Cache, url: str, *, deadline: float, origin: str,
                max_bytes: int, provider: str | None) -> Artifact:
    handle, temp = cache.temp_file()
    adopted: Artifact | None = None  # once moved into the cache, no temp file is left
    timeout = max(1.0, deadline - time.monotonic())
    streamed = client.stream(url, timeout=timeout, provider=provider) if provider \
        else client.stream(url, timeout=timeout)
    try:
        with handle, streamed as (
                status, headers, chunks):
            if status != 200:
                # gone or refused (an expired URL) is final; a server's trouble may pass
                raise DownloadError(f"{origin}: download answered HTTP {status}",
                                    retryable=status >= 500 or status in (408, 429))
            declared = headers.get("Content-Length")
            expected = int(declared) if declared and declared.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise DownloadError(f"{origin}: artifact is larger than the cap "
                                    f"({expected:,} > {max_bytes:,} bytes)", retryable=False)
            digest = hashlib.sha256()
            size = 0
            pending = bytearray()  # the network's blocks, written a few at a time
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{origin}: artifact is larger than the cap "
                                        f"({max_bytes:,} bytes)", retryable=False)
                if time.monotonic() > deadline:
                    raise DownloadError(f"{origin}: download too slow; the step's timeout ran out",
                                        hint="raise the step's `timeout`")
                digest.update(chunk)
                pending += chunk
                if len(pending) >= _WRITE_BLOCK:
                    write_all(handle, pending)
                    pending.clear()
            write_all(handle, pending)
            if expected is not None and size != expected:
                raise DownloadError(f"{origin}: download truncated ({size:,} of {expected:,} "
                                    "bytes)", hint="run again: the file is fetched anew")
            claimed = headers.get("Content-Type", "").split(";")[0].strip().lower() or None
            adopted = _adopt(cache, handle, temp, digest.hexdigest(), size, claimed, origin)
    finally:
        if adopted is None:
            with contextlib.suppress(OSError):
                temp.unlink()
    return adopted


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
            write_all(handle, raw)
            return _adopt(cache, handle, temp, hashlib.sha256(raw).hexdigest(), len(raw), None,
                          origin)
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
        raise DownloadError(f"{path} is not a {KINDS} file")
    return media_type, EXTENSIONS[media_type]
