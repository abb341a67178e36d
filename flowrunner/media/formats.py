"""What a file is, by its own bytes: images, video and audio, and whether it is whole.

Every artifact is checked here before it enters the cache: its signature names its media
type (never the URL or the server's Content-Type alone), and its structure must be
complete (PNG's IEND, JPEG's end marker, RIFF and MP4 box sizes that add up to the file,
a Matroska segment as long as it says), so a download cut short is noticed.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

EXTENSIONS = {
    "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif",
    "image/svg+xml": "svg", "image/x-icon": "ico",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
    "audio/mpeg": "mp3", "audio/wav": "wav", "audio/mp4": "m4a", "audio/ogg": "ogg",
    "audio/flac": "flac", "audio/aac": "aac",
}
KINDS = "PNG, JPEG, WEBP, GIF, SVG, ICO, MP4, MOV, WEBM, MP3, WAV, M4A, AAC, OGG or FLAC"
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ")


def kind_of(media_type: str) -> str:
    """"image", "video" or "audio"."""
    return media_type.split("/", 1)[0]


def sniff(head: bytes) -> str | None:
    """The media type the first bytes announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"\x00\x00\x01\x00" and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "image/x-icon"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        return "audio/mp4" if brand in _AUDIO_BRANDS else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:  # ADTS (layer 00)
        return "audio/aac"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF
                                   and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    if text.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head.lower():
        return "image/svg+xml"
    return None


def incomplete(media_type: str, handle: BinaryIO, size: int, *,
               head: bytes | None = None) -> str | None:
    """Why the file open in ``handle`` (``size`` bytes) is not whole, or None.
    ``head``: its first bytes, when already read."""
    if head is None or len(head) < min(64, size):
        handle.seek(0)
        head = handle.read(64)
    head = head[:64]
    handle.seek(max(0, size - 64))
    tail = handle.read(64)
    if media_type == "image/png":
        if len(head) < 24 or head[12:16] != b"IHDR":
            return "PNG header is damaged"
        if not tail.endswith(b"IEND\xaeB`\x82"):
            return "PNG ends before its IEND chunk (truncated)"
    elif media_type == "image/jpeg":
        if not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return "JPEG ends before its end marker (truncated)"
    elif media_type in ("image/webp", "audio/wav"):
        field = struct.unpack("<I", head[4:8])[0]
        # a streamed WAV may leave its size unknown (0 or all ones): nothing to check
        streamed = media_type == "audio/wav" and field in (0, 0xFFFFFFFF)
        if not streamed and field + 8 != size:
            return f"{EXTENSIONS[media_type].upper()} says {field + 8} bytes but has {size} " \
                   "(truncated)"
    elif media_type == "image/gif":
        if not tail.endswith(b";"):
            return "GIF ends before its trailer (truncated)"
    elif media_type == "image/svg+xml":
        if not tail.rstrip().lower().endswith(b"</svg>"):
            return "SVG ends before </svg> (truncated)"
    elif media_type in ("video/mp4", "video/quicktime", "audio/mp4"):
        return _mp4_incomplete(handle, size)
    elif media_type == "video/webm":
        return _matroska_incomplete(head, size)
    return None


def _mp4_incomplete(handle: BinaryIO, size: int) -> str | None:
    """Walk the top-level boxes (ISO BMFF): their sizes must add up to the file, and the
    movie header (`moov`) must be there, or no player can open it."""
    offset = 0
    seen: set[bytes] = set()
    while offset < size:
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return f"MP4 box header cut off at byte {offset:,} (truncated)"
        length, name = struct.unpack(">I4s", header[:8])
        if length == 1:
            if len(header) < 16:
                return f"MP4 box header cut off at byte {offset:,} (truncated)"
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:
            length = size - offset  # to the end of the file
        if length < 8:
            return f"MP4 box {name!r} at byte {offset:,} is damaged"
        if offset + length > size:
            return f"MP4 box {name.decode('latin-1')!r} needs {offset + length:,} bytes but " \
                   f"the file has {size:,} (truncated)"
        seen.add(name)
        offset += length
    if b"moov" not in seen and b"moof" not in seen:
        return "MP4 has no movie header (moov box): not playable"
    return None


def _vint(data: bytes, at: int) -> tuple[int, int, bool] | None:
    """(value, length, unknown) of the EBML variable-size integer at ``at``."""
    if at >= len(data) or data[at] == 0:
        return None
    first = data[at]
    length = 8 - first.bit_length() + 1
    if at + length > len(data):
        return None
    value = first & (0xFF >> length)
    for byte in data[at + 1:at + length]:
        value = (value << 8) | byte
    return value, length, value == (1 << (7 * length)) - 1


def _matroska_incomplete(head: bytes, size: int) -> str | None:
    """The EBML header, then a Segment whose declared size must fit the file."""
    header = _vint(head, 4)
    if header is None:
        return "WEBM header is damaged"
    at = 4 + header[1] + header[0]
    if head[at:at + 4] != b"\x18\x53\x80\x67":
        return None  # a header longer than we read: nothing more to check cheaply
    segment = _vint(head, at + 4)
    if segment is None:
        return "WEBM segment header is damaged"
    value, length, unknown = segment
    if not unknown and at + 4 + length + value > size:
        return f"WEBM segment says {at + 4 + length + value:,} bytes but the file has " \
               f"{size:,} (truncated)"
    return None


def dimensions(media_type: str, head: bytes) -> tuple[int | None, int | None]:
    """Width and height of an image, from its first bytes, when they say."""
    if media_type == "image/png" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if media_type == "image/webp" and head[12:16] == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None, None
