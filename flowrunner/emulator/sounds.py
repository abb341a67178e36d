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
