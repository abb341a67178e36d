"""Placeholder audio for the emulator: a short WAV tone made from the request, so that
different prompts give different (and playable) files."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave

RATE = 8000  # samples per second: small files, still a real WAV every player opens


def wav(seed: str, *, seconds: float = 1.0) -> bytes:
    """A mono 16-bit WAV: two notes whose pitches come from ``seed``, faded in and out."""
    digest = hashlib.sha256(seed.encode()).digest()
    first = 220 + int.from_bytes(digest[:2], "big") % 440
    second = 220 + int.from_bytes(digest[2:4], "big") % 440
    count = int(RATE * seconds)
    fade = RATE // 20
    frames = bytearray()
    for i in range(count):
        pitch = first if i < count // 2 else second
        envelope = min(1.0, i / fade, (count - i) / fade)
        value = int(12000 * envelope * math.sin(2 * math.pi * pitch * i / RATE))
        frames += struct.pack("<h", value)
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(RATE)
        sound.writeframes(bytes(frames))
    return out.getvalue()


MP3_FRAME = b"\xff\xfb\x90\xc0"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono
MP3_FRAME_BYTES = 417  # 144 * 128000 / 44100, no padding
MP3_FRAMES_PER_SECOND = 44100 / 1152


def mp3(seed: str, *, seconds: float = 1.0) -> bytes:
    """A real MP3 (silence: zero side information decodes to nothing) behind an ID3v2.3 tag
    naming ``seed``, so different requests give different files every player opens."""
    text = seed.encode("utf-8")[:200]
    frame = b"TIT2" + struct.pack(">I", len(text) + 1) + b"\x00\x00" + b"\x03" + text
    size = len(frame)
    synchsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F,
                       size & 0x7F])
    tag = b"ID3\x03\x00\x00" + synchsafe + frame
    count = max(1, round(seconds * MP3_FRAMES_PER_SECOND))
    return tag + (MP3_FRAME + bytes(MP3_FRAME_BYTES - 4)) * count
