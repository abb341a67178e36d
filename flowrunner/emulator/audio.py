"""OpenAI-format audio as the gateway family serves it (contracts/audio.json): speech from
text, and transcription of an uploaded file."""

from __future__ import annotations

import hashlib
from typing import Any

from .._json import canonical_json
from . import contract, sounds
from .exchange import Exchange
from .routing import Rule, exact


class AudioRoutes(Exchange):
    """The audio routes' handlers."""

    # --- OpenAI-format audio (contracts/audio.json) --------------------------------------
    def _speech(self, body: bytes, record: dict[str, Any]) -> None:
        parsed = self._parse(body, record)
        if parsed is None:
            return
        fields, _uploads, as_json = parsed
        spec = contract.load("audio.json")["speech"]
        problem = None if as_json else "expected a JSON body"
        for name in spec["required"]:
            if problem is None and not fields.get(name):
                problem = f"{name} is required"
        problem = problem or contract.field_problem(fields, spec["types"],
                                                    unknown="unknown parameter {name!r}")
        fmt = fields.get("response_format", spec["default_format"])
        if problem is None and len(str(fields.get("input", ""))) > spec["input_max"]:
            problem = f"input is longer than {spec['input_max']} characters"
        if problem is None and fmt not in spec["formats"]:
            problem = f"response_format must be one of {', '.join(spec['formats'])}"
        low, high = spec["speed"]
        if problem is None and not low <= float(fields.get("speed", 1.0)) <= high:
            problem = f"speed must be {low} to {high}"
        if problem is None and fmt not in spec["made_here"]:
            problem = f"the emulator makes {' and '.join(spec['made_here'])} only, not {fmt}"
        if problem is not None:
            self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                       "code": None}})
            return
        seed = canonical_json(fields)
        data = sounds.wav(seed) if fmt == "wav" else sounds.mp3(seed)
        self._send(200, data, spec["made_here"][fmt])

    def _transcribe(self, body: bytes, record: dict[str, Any]) -> None:
        parsed = self._parse(body, record)
        if parsed is None:
            return
        fields, uploads, as_json = parsed
        spec = contract.load("audio.json")["transcriptions"]
        audio = (uploads.get(spec["file"]) or [b""])[0]
        problem = "expected multipart/form-data with the audio in `file`" if as_json else None
        for name in fields:
            if problem is None and name not in spec["fields"]:
                problem = f"Unrecognized request argument supplied: {name}"
        for name in spec["required"]:
            if problem is None and not fields.get(name):
                problem = f"Missing required parameter: '{name}'"
        if problem is None and not audio:
            problem = f"Missing required parameter: '{spec['file']}'"
        if problem is None and not (audio.startswith((b"RIFF", b"ID3", b"OggS", b"fLaC"))
                                    or audio[4:8] == b"ftyp" or audio[:1] == b"\xff"):
            problem = "Invalid file format: not an audio file"
        fmt = fields.get("response_format", "json")
        if problem is None and fmt not in spec["formats"]:
            problem = f"response_format must be one of {', '.join(spec['formats'])}"
        if problem is not None:
            self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                       "code": None}})
            return
        words = f"Emulated transcript of {len(audio)} bytes of audio " \
                f"({hashlib.sha256(audio).hexdigest()[:8]})."
        if fmt == "text":
            self._send(200, words.encode(), "text/plain")
            return
        answer: dict[str, Any] = {"text": words}
        if fmt == "verbose_json":
            answer.update(language=fields.get("language", "english"), duration=1.0,
                          segments=[{"id": 0, "start": 0.0, "end": 1.0, "text": words}])
        self._json(200, answer)


ROUTES = (
    Rule("POST", exact("/v1/audio/transcriptions"), "audio.transcriptions",
         lambda h, r: h._transcribe(r.body, r.record)),
    Rule("POST", exact("/v1/audio/speech"), "audio.speech",
         lambda h, r: h._speech(r.body, r.record)),
)
