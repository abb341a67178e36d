"""What a file is, and whether it is whole: video and audio beside images."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from flowrunner.media.formats import EXTENSIONS, incomplete, kind_of, sniff


def _wav(frames: int = 800) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x01\x02" * frames)
    return out.getvalue()


def _box(name: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + name + payload


def _mp4(brand: bytes = b"isom") -> bytes:
    return (_box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"mp41")
            + _box(b"moov", _box(b"mvhd", b"\x00" * 100)) + _box(b"mdat", b"\x00" * 500))


def _webm(segment: int, body: int) -> bytes:
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | 4]) + b"\x42\x86\x81\x01"
    return header + b"\x18\x53\x80\x67" + bytes([0x01]) + segment.to_bytes(7, "big") \
        + b"\x00" * body


def _check(data: bytes) -> tuple[str | None, str | None]:
    media_type = sniff(data[:4096])
    return media_type, incomplete(media_type, io.BytesIO(data), len(data)) \
        if media_type else None


@pytest.mark.parametrize(("data", "media_type", "ext"), [
    (_wav(), "audio/wav", "wav"),
    (_mp4(), "video/mp4", "mp4"),
    (_mp4(b"qt  "), "video/quicktime", "mov"),
    (_mp4(b"M4A "), "audio/mp4", "m4a"),
    (_webm(100, 100), "video/webm", "webm"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 50, "audio/mpeg", "mp3"),
    (b"\xff\xfb\x90\x00" * 50, "audio/mpeg", "mp3"),
    (b"OggS\x00\x02" + b"\x00" * 60, "audio/ogg", "ogg"),
    (b"fLaC\x00\x00\x00\x22" + b"\x00" * 60, "audio/flac", "flac"),
])
def test_video_and_audio_are_known_by_their_bytes_and_whole(data: bytes, media_type: str,
                                                            ext: str) -> None:
    assert _check(data) == (media_type, None)
    assert EXTENSIONS[media_type] == ext
    assert kind_of(media_type) in ("video", "audio")


@pytest.mark.parametrize(("data", "says"), [
    (_wav()[:-100], "WAV says"),
    (_mp4()[:-100], "needs"),
    (_mp4()[:26], "cut off"),
    (_mp4()[:20], "needs"),
    (_box(b"ftyp", b"isom\x00\x00\x02\x00") + _box(b"mdat", b"\x00" * 50), "moov"),
    (_webm(100, 50), "WEBM segment says"),
])
def test_a_video_or_audio_file_cut_short_is_noticed(data: bytes, says: str) -> None:
    media_type, problem = _check(data)
    assert media_type is not None
    assert problem is not None and says in problem


def test_a_streamed_wav_of_unknown_length_is_accepted() -> None:
    data = bytearray(_wav())
    data[4:8] = b"\xff\xff\xff\xff"
    assert _check(bytes(data)) == ("audio/wav", None)


def test_text_and_unknown_bytes_are_no_media() -> None:
    assert sniff(b"hello world") is None
    assert sniff(b"\x00\x00\x00\x00") is None
