"""The bundled emulator of the providers flowrunner speaks to, over real HTTP on loopback.

One server models one kind of provider: the ElkAPI `gateway` (Recraft under `/recraft`,
Flux under `/flux`; new-api's auth forms and JSON error bodies), `recraft` itself
(`/v1/images/...`, Bearer) or `bfl` (`/v1/{model}`, `x-key`, a polling URL on another host
name). Requests are checked against each provider's published contract (contract.py, kept as
its own data, never read from flowrunner's catalog), answered in the real shapes, with
deterministic placeholder files it serves itself, tasks that pass through pending states,
and faults on request. Imports nothing of the run (scheduler, calls, planning).

Control endpoints (for tests and benchmarks): GET /_emulator/requests, POST /_emulator/faults
{"kind", "count", "retry_after"}, POST /_emulator/reset, GET /_emulator/blob/<bytes>.png,
POST /_emulator/big {"bytes": N, "kind": "png"|"mp4"} → {"url": …}.
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import hashlib
import json
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._json import canonical_json
from . import (
    contract,
    ideogram,
    images,
    kling,
    midjourney,
    minimax,
    newapi,
    openai_images,
    replicate,
    runway,
    sora,
    sounds,
    suno,
    unified_video,
    video,
    video_tasks,
)
from .contract import Refused
from .faults import API_FAULTS, FAULT_KINDS

TASK_PENDING_POLLS = 2  # polls a task answers still running before its result (by default)
KINDS = ("gateway", "recraft", "bfl")


def _uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


def parse_fault(text: str) -> dict[str, Any]:
    """``KIND[:COUNT]`` → fault dict. Raises ValueError for an unknown kind."""
    kind, _, count = text.partition(":")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
    return {"kind": kind, "count": int(count) if count else 1, "retry_after": 1}


class TaskTable(dict[str, dict[str, Any]]):
    """The emulator's tasks by id. Each task notes, as it is added, how many polls it
    answers still pending (`pending`: the server's `pending_polls`) before its result."""

    def __init__(self, pending_polls: int) -> None:
        super().__init__()
        self.pending_polls = pending_polls

    def __setitem__(self, task_id: str, task: dict[str, Any]) -> None:
        task.setdefault("pending", self.pending_polls)
        super().__setitem__(task_id, task)


class EmulatorState:
    """Everything the emulator remembers: files, tasks, received requests, pending faults."""

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0,
                 plain_images: bool = False, kind: str = "gateway",
                 pending_polls: int = TASK_PENDING_POLLS) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of provider {kind!r}; known: {', '.join(KINDS)}")
        self.kind = kind
        self.api_key = api_key
        self.styles: set[str] = set()  # style ids this emulator created
        self.access_log: Any = None  # a stream for one line per request (flow emulator)
        self.latency = latency
        self.plain_images = plain_images  # benchmarks: cheap gradients, no drawing
        self.lock = threading.Lock()
        self.files: dict[str, tuple[bytes, str]] = {}
        self.tasks = TaskTable(pending_polls)
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []

    def take_fault(self, kinds: AbstractSet[str]) -> dict[str, Any] | None:
        with self.lock:
            return self.take_fault_locked(kinds)

    def take_fault_locked(self, kinds: AbstractSet[str]) -> dict[str, Any] | None:
        """`take_fault` for a caller that holds ``lock``."""
        for fault in self.faults:
            if fault["kind"] in kinds and fault["count"] > 0:
                fault["count"] -= 1
                return dict(fault)
        return None

    def add_file(self, data: bytes, media_type: str) -> str:
        name = hashlib.sha256(data).hexdigest()[:32] + "." + _FILE_EXTENSIONS.get(media_type,
                                                                                 "bin")
        with self.lock:
            self.files[name] = (data, media_type)
        return name


_FILE_EXTENSIONS = {"image/png": "png", "image/svg+xml": "svg", "image/jpeg": "jpg",
                    "audio/wav": "wav", "audio/mpeg": "mp3", "video/mp4": "mp4"}


def _size(value: Any, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    if isinstance(value, str):
        match = re.match(r"^(\d+)x(\d+)$", value)
        if match:
            return int(match.group(1)), int(match.group(2))
        match = re.match(r"^(\d+):(\d+)$", value)
        if match:
            w, h = int(match.group(1)), int(match.group(2))
            return (1024, max(1, 1024 * h // w)) if w >= h else (max(1, 1024 * w // h), 1024)
    return default


class Handler(BaseHTTPRequestHandler):
    server_version = "ElkAPI-emulator/1"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # without it every keep-alive request waits ~40 ms
    state: EmulatorState

    def log_message(self, format: str, *args: Any) -> None:
        return  # http.server's own log lines: replaced by the access log below

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request on `flow emulator`'s stderr (the in-process --mock and the
        tests keep quiet): method, path, status and how long it took."""
        stream = self.state.access_log
        if stream is None:
            return
        took = time.monotonic() - getattr(self, "_started", time.monotonic())
        stream.write(f"{self.address_string()} {self.command} {self.path} {code} "
                     f"{took * 1000:.0f} ms\n")
        stream.flush()

    # --- plumbing ------------------------------------------------------------------------
    def _base(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])  # type: ignore[index]
        return f"{'https' if isinstance(self.connection, ssl.SSLSocket) else 'http'}://{host}"

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        # --latency is the time an API call takes in all, work included, like a real server
        respond_at = getattr(self, "_respond_at", 0.0)
        if respond_at:
            self._respond_at = 0.0
            time.sleep(max(0.0, respond_at - time.monotonic()))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", headers)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        """An error in the shape this kind of provider answers with."""
        if self.state.kind == "recraft":
            self._json(status, {"code": kind, "message": message})
        elif self.state.kind == "bfl":
            self._json(status, {"detail": message})
        else:
            self._json(status, {"error": {"message": message, "type": kind, "code": status}})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._started = time.monotonic()
        url = urlsplit(self.path)
        path = url.path
        body = self._read_body() if method in ("POST", "PUT") else b""
        if path.startswith("/_emulator/"):
            self._control(method, path, body)
            return
        if method == "GET" and path.startswith("/files/"):
            self._file(path[len("/files/"):])
            return
        record: dict[str, Any] = {"method": method, "path": path, "query": url.query,
                                  "authorization": self.headers.get("Authorization"),
                                  "x_key": self.headers.get("x-key"),
                                  "content_type": self.headers.get("Content-Type", ""),
                                  "via": self.headers.get("Via")}  # a forward proxy's mark
        with self.state.lock:
            self.state.requests.append(record)
        self._respond_at = time.monotonic() + self.state.latency if self.state.latency else 0.0
        if not self._authorised():
            if self.state.kind == "recraft":  # upstream Recraft's own words
                self._send(401, b"request unauthorized", "text/plain")
            elif self.state.kind == "bfl":
                self._json(403, {"detail": "Not authenticated"})
            else:
                self._error(401, "invalid token", "new_api_error")
            return
        fault = self.state.take_fault(API_FAULTS)
        if fault:
            if fault["kind"] == "bad-json":
                self._send(200, b'{"data": [{"url": ', "application/json")
            elif fault["kind"] == "reset":
                # SO_LINGER 0: close() sends RST, as a crashed proxy would
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
            elif fault["kind"] == "echo-auth":
                echoed = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
                self._error(400, f"bad request; you sent:\n{echoed}")
            elif fault["kind"] == "redirect":
                self._send(307, b"", "text/plain", {"Location": fault["location"] + path})
            elif fault["kind"] == "slow-json":
                body = b'{"data": []}' + b" " * 200
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            elif fault["kind"] == "huge-json":
                size = int(fault.get("bytes", 64 << 20))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(b'{"pad": "')
                block = b"x" * 65536
                left = size - 11
                while left > 0:
                    self.wfile.write(block[:min(left, len(block))])
                    left -= len(block)
                self.wfile.write(b'"}')
            else:
                status = int(fault["kind"])
                headers = {"Retry-After": str(fault.get("retry_after", 1))} if status == 429 else {}
                self._json(status, {"error": {"message": f"emulated HTTP {status}",
                                              "type": "upstream_error", "code": status}}, headers)
            return
        self._route(method, path, url.query, body, record)

    def _route(self, method: str, path: str, query: str, body: bytes,
               record: dict[str, Any]) -> None:
        kind = self.state.kind
        flux_prefix = "/flux/v1/" if kind == "gateway" else "/v1/"
        if kind in ("gateway", "bfl") and path.startswith(flux_prefix):
            name = path[len(flux_prefix):]
            if method == "GET" and name == "get_result":
                record["operation"] = "flux.get_result"
                self._poll(parse_qs(query).get("id", [""])[0])
                return
            if method == "POST" and "/" not in name and name:
                record["operation"] = "flux.submit"
                self._flux(name, body, record)
                return
        ideogram_call = ideogram.operation_of(path) if kind == "gateway" else None
        if ideogram_call is not None and method == "POST":
            record["operation"] = f"ideogram.{ideogram_call}"
            parsed = self._parse(body, record)
            if parsed is None:
                return
            fields, uploads, _as_json = parsed
            problem = ideogram.check(fields, uploads, ideogram_call)
            if problem:
                self._json(400, {"error": problem})
                return
            self._json(200, ideogram.answer_for(ideogram_call, fields, self._file_adder()))
            return
        if kind == "gateway" and method == "POST" and path in ("/v1/images/generations",
                                                              "/v1/images/edits"):
            images_call = path.rsplit("/", 1)[1]
            record["operation"] = f"openai.images.{images_call}"
            parsed = self._parse(body, record)
            if parsed is None:
                return
            fields, uploads, as_json = parsed
            problem = openai_images.check(images_call, fields, uploads, as_json=as_json)
            if problem:
                self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                           "param": None, "code": None}})
                return
            self._json(200, openai_images.answer(fields, self._file_adder()))
            return
        sora_call = re.match(r"^/v1/videos(?:/([^/]+)(/content)?)?$", path)
        if kind == "gateway" and sora_call:
            self._sora(method, sora_call.group(1), bool(sora_call.group(2)), body, record)
            return
        minimax_spec = contract.load("minimax.json")
        if kind == "gateway" and path in (minimax_spec["submit"], minimax_spec["query"],
                                          minimax_spec["retrieve"]):
            self._minimax(method, path, query, body, record)
            return
        runway = contract.load("runway.json")
        if kind == "gateway" and (path == runway["submit"] or
                                  path.startswith(runway["poll"].replace("{id}", ""))):
            self._runway(method, path, body, record)
            return
        family = self._video_family(method, path, query)
        if kind == "gateway" and family is not None:
            name, task_id = family
            record["operation"] = f"{name}.{'poll' if task_id else 'submit'}"
            if task_id is None:
                self._video_task_submit(name, body, record)
            else:
                with self.state.lock:
                    task = self.state.tasks.get(task_id)
                shared = {"sora_reverse"} if name == "veo" else set()  # one query route
                if task is None or task.get("family_kind") not in {name} | shared:
                    self._error(404, "task not found")
                else:
                    self._json(200, video_tasks.poll(task, self._file_adder()))
            return
        replicate_call = re.match(r"^/replicate/v1/(?:models/([\w.-]+/[\w.-]+)/predictions|"
                                  r"predictions/([^/]+)|(predictions)|"
                                  r"models/([\w.-]+/[\w.-]+)/versions/([0-9a-f]+))$", path)
        if kind == "gateway" and replicate_call and method == "POST" and \
                replicate_call.group(3):
            record["operation"] = "replicate.create_version"
            self._replicate_create(None, body, record)
            return
        if kind == "gateway" and replicate_call and method == "GET" and \
                replicate_call.group(5):
            record["operation"] = "replicate.version"
            self._json(200, replicate.version(replicate_call.group(4), replicate_call.group(5)))
            return
        if kind == "gateway" and replicate_call:
            if method == "POST" and replicate_call.group(1):
                record["operation"] = "replicate.create"
                self._replicate_create(replicate_call.group(1), body, record)
                return
            if method == "GET" and replicate_call.group(2):
                record["operation"] = "replicate.get"
                with self.state.lock:
                    task = self.state.tasks.get(replicate_call.group(2))
                if task is None or task.get("family") != "replicate":
                    self._json(404, {"detail": "Not found."})
                    return
                self._json(200, replicate.poll(task, self._file_adder()))
                return
        video_task = re.match(r"^/v1/video/generations(?:/([^/]+))?$", path)
        if kind == "gateway" and video_task:
            if method == "POST" and not video_task.group(1):
                record["operation"] = "video.generate"
                self._video_submit(body, record)
                return
            if method == "GET" and video_task.group(1):
                record["operation"] = "video.get"
                with self.state.lock:
                    task = self.state.tasks.get(video_task.group(1))
                if task is None or task.get("family") != "video":
                    self._error(404, "task not found")
                    return
                self._json(200, unified_video.poll(task, self._file_adder()))
                return
        if kind == "gateway" and method == "POST" and path == "/v1/audio/transcriptions":
            record["operation"] = "audio.transcriptions"
            self._transcribe(body, record)
            return
        if kind == "gateway" and method == "POST" and path == "/v1/audio/speech":
            record["operation"] = "audio.speech"
            self._speech(body, record)
            return
        mj = re.match(r"^(?:/(?:fast|relax))?/mj/(?:submit/(\w[\w-]*)|task/([^/]+)/fetch)$",
                      path)
        if kind == "gateway" and mj:
            if method == "POST" and mj.group(1):
                record["operation"] = f"midjourney.{mj.group(1)}"
                self._mj_submit(mj.group(1), body, record)
                return
            if method == "GET" and mj.group(2):
                record["operation"] = "midjourney.fetch"
                self._mj_fetch(mj.group(2))
                return
        kling = re.match(r"^/kling/v1/(videos/text2video|videos/image2video|images/generations)"
                         r"(?:/([^/]+))?$", path)
        if kind == "gateway" and kling:
            kling_call = kling.group(1).rsplit("/", 1)[-1].replace("generations", "images")
            if method == "POST" and not kling.group(2):
                record["operation"] = f"kling.{kling_call}"
                self._kling_submit(kling_call, body, record)
                return
            if method == "GET" and kling.group(2):
                record["operation"] = f"kling.{kling_call}.get"
                self._kling_poll(kling_call, kling.group(2))
                return
        if kind == "gateway" and path.startswith("/suno/"):
            if method == "POST" and path.startswith("/suno/submit/"):
                record["operation"] = f"suno.submit.{path.rsplit('/', 1)[1]}"
                self._suno_submit(path.rsplit("/", 1)[1], body, record)
                return
            if method == "GET" and path.startswith("/suno/fetch/"):
                record["operation"] = "suno.fetch"
                self._suno_fetch(path.rsplit("/", 1)[1])
                return
        if kind in ("gateway", "recraft") and method == "POST":
            operation = contract.gateway_recraft_operation(path) if kind == "gateway" \
                else contract.recraft_operation(path)
            if operation is not None:
                record["operation"] = f"recraft.{operation}"
                self._recraft(operation, body, record)
                return
        self._send(404, b"404 page not found", "text/plain")

    def _authorised(self) -> bool:
        if self.state.kind == "gateway":
            key = contract.gateway_key(self.headers, urlsplit(self.path).path)
            expected = self.state.api_key
            return bool(key) and (expected is None
                                  or key == contract.normalise_gateway_key(expected))
        elif self.state.kind == "bfl":
            key = (self.headers.get("x-key") or "").strip() or None
        else:
            header = self.headers.get("Authorization", "")
            key = header[7:].strip() if header.startswith("Bearer ") else None
        if not key:
            return False
        return self.state.api_key is None or key == self.state.api_key

    # --- control -------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> None:
        state = self.state
        if path == "/_emulator/requests" and method == "GET":
            with state.lock:
                self._json(200, list(state.requests))
        elif path == "/_emulator/reset" and method == "POST":
            with state.lock:
                state.requests.clear()
                state.faults.clear()
                state.tasks.clear()
            self._json(200, {"ok": True})
        elif path == "/_emulator/faults" and method == "POST":
            try:
                fault = json.loads(body or b"{}")
                if fault.get("kind") not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind {fault.get('kind')!r}")
            except ValueError as exc:
                self._error(400, str(exc))
                return
            fault.setdefault("count", 1)
            fault.setdefault("retry_after", 1)
            with state.lock:
                state.faults.append(fault)
            self._json(200, {"ok": True})
        elif path == "/_emulator/latency" and method == "POST":
            state.latency = float(json.loads(body or b"{}").get("seconds", 0))
            self._json(200, {"ok": True})
        elif path == "/_emulator/big" and method == "POST":
            asked = json.loads(body or b"{}")
            size = int(asked.get("bytes", 1 << 20))
            ext = "mp4" if asked.get("kind") == "mp4" else "png"
            self._json(200, {"url": f"{self._base()}/_emulator/blob/{size}.{ext}",
                             "credits": 0})
        elif path.startswith("/_emulator/blob/") and method == "GET":
            size_text, _, ext = path.rsplit("/", 1)[1].partition(".")
            size = int(size_text)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4" if ext == "mp4" else "image/png")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            stream = video.big_mp4_stream(size) if ext == "mp4" else images.big_png_stream(size)
            for piece in stream:
                self.wfile.write(piece)
        else:
            self._send(404, b"404 page not found", "text/plain")

    def _file(self, name: str) -> None:
        with self.state.lock:
            found = self.state.files.get(name)
        if found is None:
            self._send(404, b"404 page not found", "text/plain")
            return
        data, media_type = found
        if self.state.take_fault({"truncate"}):
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if self.state.take_fault({"slow-body"}):
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for index in range(0, len(data), 64):
                self.wfile.write(data[index:index + 64])
                self.wfile.flush()
                time.sleep(0.5)
            return
        self._send(200, data, media_type, {"Cache-Control": "max-age=86400"})

    # --- endpoints -----------------------------------------------------------------------
    def _parse(self, body: bytes, record: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, list[bytes]], bool] | None:
        """(fields, uploads by field, is JSON), or None when an error was answered."""
        content_type = self.headers.get("Content-Type", "")
        uploads: dict[str, list[bytes]] = {}
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            fields: dict[str, Any] = {}
            record["files"] = []
            for part in message.iter_parts():
                name = str(part.get_param("name", header="content-disposition") or "")
                payload = part.get_payload(decode=True) or b""
                assert isinstance(payload, bytes)
                if part.get_filename() is not None:
                    uploads.setdefault(name, []).append(payload)
                    record["files"].append({
                        "field": name, "filename": part.get_filename(),
                        "content_type": part.get_content_type(),
                        "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)})
                else:
                    fields[name] = payload.decode("utf-8", "replace")
            record["fields"] = fields
            return fields, uploads, False
        if body and "json" not in content_type:
            self._error(415, "expected application/json or multipart/form-data, "
                             f"got {content_type!r}")
            return None
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            self._error(400, "request body is not valid JSON")
            return None
        if not isinstance(fields, dict):
            self._error(400, "request body must be a JSON object")  # type: ignore[unreachable]
            return None
        record["json"] = fields
        return fields, uploads, True

    def _json_fields(self, body: bytes, record: dict[str, Any]) -> dict[str, Any] | None:
        """A JSON body's fields, or None when an error was answered (415 for another kind
        of body)."""
        parsed = self._parse(body, record)
        if parsed is None:
            return None
        fields, _uploads, as_json = parsed
        if not as_json:
            self._error(415, "expected application/json")
            return None
        return fields

    def _recraft(self, operation: str, body: bytes, record: dict[str, Any]) -> None:
        parsed = self._parse(body, record)
        if parsed is None:
            return
        fields, uploads, as_json = parsed
        try:
            with self.state.lock:
                styles = set(self.state.styles)
            params, files = contract.check_recraft(operation, kind=self.state.kind,
                                                   fields=fields, uploads=uploads,
                                                   as_json=as_json, styles=styles)
        except Refused as exc:
            self._error(exc.status, exc.message)
            return
        seed = canonical_json({"operation": operation, "params": params,
                               "files": {k: [hashlib.sha256(b).hexdigest() for b in v]
                                         for k, v in files.items()}})
        doc = contract.load("recraft.json")["operations"][operation]
        if doc["answer"] == "style":
            style_id = contract.make_style_id(seed)
            with self.state.lock:
                self.state.styles.add(style_id)
            self._json(200, {"id": style_id, "style": params.get("style"),
                             "is_private": params.get("private") in (True, "true"),
                             "creation_time": "2026-01-01T00:00:00Z",
                             "credits": self._price(operation, params)})
        elif doc["answer"] == "enhance":
            words = str(params.get("prompt", "")).strip()
            self._json(200, {"enhanced_prompt": f"{words}, richly detailed, balanced "
                                                "composition, soft natural light",
                             "credits": self._price(operation, params)})
        elif doc["answer"] == "process":
            self._process(operation, doc, params, files, seed)
        else:
            self._generate(operation, doc, params, files, seed)

    def _price(self, operation: str, params: dict[str, Any]) -> float:
        """The call's cost as this provider reports it (the gateway in its own credits)."""
        units = _recraft_units(operation, params)
        if self.state.kind != "gateway":
            return units
        rate = contract.load("gateway.json")["credits"]["recraft_units_per_credit"]
        cost = units / rate
        return int(cost) if cost.is_integer() else round(cost, 4)

    def _image_for(self, operation: str, doc: dict[str, Any], params: dict[str, Any],
                   files: dict[str, list[bytes]], seed: str, index: int) -> tuple[bytes, str]:
        label = str(params.get("prompt", operation))
        shown = f"recraft.{operation}"
        model = str(params.get("model", doc.get("default_model", "")))
        effect = doc.get("effect")
        vector = "vector" in model or params.get("style") == "vector_illustration" or \
            effect == "vectorize"
        source = (files.get("image") or [b""])[0]
        width, height = images.png_size(source) or _size(params.get("size"))
        if effect == "upscale":
            width, height = min(4096, width * 2), min(4096, height * 2)
        seed_i = f"{seed}#{index}"
        if effect and source.startswith(b"\x89PNG") and not self.state.plain_images:
            from ..media.imaging import emulate_processing

            picture, top, bottom = emulate_processing(source, effect)
            if effect == "vectorize":
                return images.svg_from(width, height, top, bottom, shown), "image/svg+xml"
            return picture, "image/png"
        if vector:
            return images.svg(width, height, seed_i, label, shown), "image/svg+xml"
        cutout = effect == "remove_background"
        if self.state.plain_images:
            return images.png(width, height, seed_i, alpha=cutout), "image/png"
        return images.poster(width, height, seed_i, prompt=label, endpoint=shown,
                             cutout=cutout), "image/png"

    def _artifact(self, data: bytes, media_type: str, params: dict[str, Any]) -> dict[str, str]:
        if params.get("response_format") == "b64_json":
            return {"b64_json": base64.b64encode(data).decode()}
        if self.state.take_fault({"file-url"}):
            return {"url": "file:///etc/passwd"}
        name = self.state.add_file(data, media_type)
        return {"url": f"{self._base()}/files/{name}"}

    def _generate(self, operation: str, doc: dict[str, Any], params: dict[str, Any],
                  files: dict[str, list[bytes]], seed: str) -> None:
        count = int(params.get("n", 1) or 1)
        made = [self._image_for(operation, doc, params, files, seed, i) for i in range(count)]
        data = [self._artifact(blob, kind, params) for blob, kind in made]
        if self.state.take_fault({"no-artifact"}):
            data = []
        width, height = _size(params.get("size"))
        digest = hashlib.sha256(seed.encode()).digest()
        self._json(200, {
            "created": 1747600000 + int.from_bytes(digest[:3], "big") % 100000,
            "data": data,
            "usage": None,
            "image": [item["url"] for item in data if "url" in item],
            "metadata": {
                "credits": self._price(operation, params), "height": height, "width": width,
                "images": [{"image_id": _uuid(f"{seed}#{i}"),
                            "image_invariants": {"preset": params.get("style", "any")},
                            "transparent": False, "vector_image": kind == "image/svg+xml"}
                           for i, (_, kind) in enumerate(made)],
                "random_seed": int.from_bytes(digest[3:6], "big"),
                "request_id": _uuid("request" + seed),
                "transform_model": params.get("model", doc.get("default_model")),
            },
            "timings": None,
        })

    def _process(self, operation: str, doc: dict[str, Any], params: dict[str, Any],
                 files: dict[str, list[bytes]], seed: str) -> None:
        blob, kind = self._image_for(operation, doc, params, files, seed, 0)
        image = {"image_id": _uuid(seed), **self._artifact(blob, kind, params)}
        if self.state.take_fault({"no-artifact"}):
            image = {"image_id": _uuid(seed)}
        self._json(200, {"created": 1747600000, "credits": self._price(operation, params),
                         "image": image})

    def _flux(self, model: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_fields(body, record)
        if fields is None:
            return
        try:
            params = contract.check_bfl(model, fields)
        except Refused as exc:
            self._error(exc.status, exc.message)
            return
        seed = canonical_json({"model": model, "params": params})
        task_id = _uuid(seed + str(time.monotonic_ns()))
        width = int(params.get("width", 1024) or 1024)
        height = int(params.get("height", 768) or 768)
        blob = images.png(width, height, seed)
        fail = self.state.take_fault({"fail-task"}) is not None
        moderate = self.state.take_fault({"moderate-task"}) is not None
        stuck = self.state.take_fault({"stuck-task"}) is not None
        with self.state.lock:
            self.state.tasks[task_id] = {"polls": 0, "blob": blob, "fail": fail, "stuck": stuck,
                                         "moderate": moderate, "model": model,
                                         "prompt": params.get("prompt"),
                                         "seed": params.get("seed", 0)}
        if self.state.kind == "bfl":
            # BFL answers with a polling URL on its own (regional) host name
            port = self.server.server_address[1]  # type: ignore[index]
            polling = f"http://localhost:{port}/v1/get_result?id={task_id}"
            self._json(200, {"id": task_id, "polling_url": polling,
                             "cost": _flux_cost(model)})
        else:
            self._json(200, {"id": task_id,
                             "polling_url": f"{self._base()}/flux/v1/get_result?id={task_id}"})

    def _poll(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None:
                task["polls"] += 1
        if task is None:
            self._json(200, {"id": task_id, "status": "Task not found"})
            return
        if task["polls"] <= task["pending"] or task["stuck"]:
            self._json(200, {"id": task_id, "status": "Pending",
                             "progress": round(min(0.99, task["polls"] / 3), 2)})
            return
        if task["moderate"]:
            self._json(200, {"id": task_id, "status": "Request Moderated",
                             "details": {"moderation_reasons": ["emulated moderation"]}})
            return
        if task["fail"]:
            self._json(200, {"id": task_id, "status": "Error",
                             "error": "emulated task failure"})
            return
        name = self.state.add_file(task["blob"], "image/png")
        answer: dict[str, Any] = {"id": task_id, "status": "Ready",
                                  "result": {"sample": f"{self._base()}/files/{name}",
                                             "prompt": task["prompt"], "seed": task["seed"]}}
        if self.state.kind == "gateway":
            answer["credits"] = contract.load("gateway.json")["credits"]["flux_per_task"]
        self._json(200, answer)


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

    # --- Midjourney (contracts/midjourney.json) ------------------------------------------
    def _file_adder(self) -> Any:
        base = self._base()

        def add_file(data: bytes, media_type: str) -> str:
            return f"{base}/files/{self.state.add_file(data, media_type)}"

        return add_file

    def _mj_submit(self, action: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_fields(body, record)
        if fields is None:
            return
        task_id = str(int.from_bytes(hashlib.sha256(
            (canonical_json(fields) + str(time.monotonic_ns())).encode()).digest()[:7], "big"))
        with self.state.lock:
            answer, task = midjourney.submit(
                action, fields, self.state.tasks, task_id=task_id,
                fail=self.state.take_fault_locked({"fail-task"}) is not None,
                remix=action in ("action", "change")
                and self.state.take_fault_locked({"remix"}) is not None)
            if task is not None:
                self.state.tasks[task_id] = task
        self._json(200, answer)

    def _mj_fetch(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "midjourney":
            self._json(404, {"code": 4, "description": "task_not_exist", "result": None})
            return
        self._json(200, midjourney.fetch(task, self._file_adder()))

    def _json_submit(self, body: bytes, record: dict[str, Any],
                     check: Callable[[dict[str, Any]], str | None],
                     refuse: Callable[[str], None]) -> dict[str, Any] | None:
        """A JSON submit's fields once ``check`` (the family's contract) finds nothing
        wrong; else ``refuse`` answers in the provider's own shape, and None."""
        parsed = self._parse(body, record)
        if parsed is None:
            return None
        fields, _uploads, as_json = parsed
        problem = "expected application/json" if not as_json else check(fields)
        if problem:
            refuse(problem)
            return None
        return fields

    # --- Kling (contracts/kling.json) ----------------------------------------------------
    def _kling_submit(self, operation: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_submit(body, record, lambda f: kling.check(operation, f),
                                   lambda problem: self._json(400, {
                                       "code": 1201, "message": problem,
                                       "request_id": "emulated"}))
        if fields is None:
            return
        digest = hashlib.sha256((canonical_json(fields) + str(time.monotonic_ns())).encode())
        shape = "reshaped" if self.state.take_fault({"reshaped"}) is not None else \
            "upstream" if self.state.take_fault({"kling-native"}) is not None else "gateway"
        # the gateway's own task id (new-api); a passthrough forwards Kling's numeric one
        task_id = newapi.task_id(digest.hexdigest()) if shape == "gateway" else \
            str(int.from_bytes(digest.digest()[:8], "big"))
        task = {"family": "kling", "id": task_id, "operation": operation, "body": fields,
                "polls": 0, "shape": shape,
                "fail": self.state.take_fault({"fail-task"}) is not None,
                "stuck": self.state.take_fault({"stuck-task"}) is not None}
        with self.state.lock:
            self.state.tasks[task_id] = task
        self._json(200, kling.submitted(task_id, shape, str(fields.get("model_name", ""))))

    def _kling_poll(self, operation: str, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "kling" or task["operation"] != operation:
            self._json(404, {"code": 1203, "message": "task not found", "request_id": "emulated"})
            return
        self._json(200, kling.poll(task, self._file_adder()))

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

    def _video_submit(self, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_submit(body, record, unified_video.check,
                                   lambda problem: self._error(400, problem))
        if fields is None:
            return
        digest = hashlib.sha256((canonical_json(fields) + str(time.monotonic_ns())).encode())
        task_id = newapi.task_id(digest.hexdigest())
        with self.state.lock:
            task = self.state.tasks[task_id] = {
                "family": "video", "id": task_id, "body": fields, "polls": 0,
                "shape": "reshaped" if self.state.take_fault_locked({"reshaped"}) is not None
                else "gateway",
                "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
        self._json(200, unified_video.submitted(task))

    def _replicate_create(self, model: str | None, body: bytes,
                          record: dict[str, Any]) -> None:
        """A prediction on ``model``'s route, or (None) by version id."""
        fields = self._json_submit(body, record,
                                   lambda f: replicate.check(f, by_version=model is None),
                                   lambda problem: self._json(422, {"detail": problem}))
        if fields is None:
            return
        model = model or f"version:{str(fields['version'])[:12]}"
        task_id = _uuid(canonical_json(fields) + model + str(time.monotonic_ns()))
        task_id = task_id.replace("-", "")[:26]
        with self.state.lock:
            task = {"family": "replicate", "id": task_id, "model": model, "body": fields,
                    "polls": 0,
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                    "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
            self.state.tasks[task_id] = task
        self._json(201, replicate.prediction(task, status="starting"))

    def _minimax(self, method: str, path: str, query: str, body: bytes,
                 record: dict[str, Any]) -> None:
        spec = contract.load("minimax.json")
        if method == "POST" and path == spec["submit"]:
            record["operation"] = "minimax.video_generation"
            fields = self._json_submit(  # MiniMax says no in base_resp, with HTTP 200
                body, record, minimax.check,
                lambda problem: self._json(200, minimax.refused(problem)))
            if fields is None:
                return
            task_id = str(int.from_bytes(hashlib.sha256((canonical_json(fields) + str(
                time.monotonic_ns())).encode()).digest()[:6], "big"))
            with self.state.lock:
                self.state.tasks[task_id] = {
                    "family": "minimax", "id": task_id, "body": fields, "polls": 0,
                    "file_id": str(int(task_id) + 1),
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                    "moderate": self.state.take_fault_locked({"moderate-task"}) is not None,
                    "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
            self._json(200, {"task_id": task_id, "base_resp": minimax.OK})
            return
        wanted = parse_qs(query)
        with self.state.lock:
            tasks = [t for t in self.state.tasks.values() if t.get("family") == "minimax"]
        if method == "GET" and path == spec["query"]:
            record["operation"] = "minimax.query"
            found = [t for t in tasks if t["id"] == wanted.get("task_id", [""])[0]]
            if not found:
                self._json(200, minimax.refused("task not found"))
                return
            if self.state.take_fault({"busy-poll"}) is not None:
                self._json(200, minimax.busy(found[0]))
                return
            self._json(200, minimax.query(found[0]))
            return
        if method == "GET" and path == spec["retrieve"]:
            record["operation"] = "minimax.files.retrieve"
            found = [t for t in tasks if t["file_id"] == wanted.get("file_id", [""])[0]
                     and t["polls"] > t["pending"]]
            if not found:
                self._json(200, minimax.refused("file not found"))
                return
            self._json(200, minimax.retrieve(found[0], self._file_adder()))
            return
        self._send(404, b"404 page not found", "text/plain")

    def _runway(self, method: str, path: str, body: bytes, record: dict[str, Any]) -> None:
        """Runway's official format: a version header on every call, then a task."""
        spec = contract.load("runway.json")
        version = self.headers.get(spec["version_header"])
        if version not in spec["versions"]:
            self._json(400, {"error": f"the {spec['version_header']} header must be one of "
                                      f"{', '.join(spec['versions'])}"})
            return
        if method == "POST" and path == spec["submit"]:
            record["operation"] = "runway.image_to_video"
            parsed = self._parse(body, record)
            if parsed is None:
                return
            fields, _uploads, as_json = parsed
            problem = runway.check(fields) if as_json else "expected application/json"
            if problem:
                self._json(400, {"error": problem})
                return
            task_id = _uuid(canonical_json(fields) + str(time.monotonic_ns()))
            with self.state.lock:
                self.state.tasks[task_id] = {
                    "family": "runway", "id": task_id, "body": fields, "polls": 0,
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None}
            self._json(200, {"id": task_id, "estimatedCost": {"credits": 25}})
            return
        task_id = path.rsplit("/", 1)[1]
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if method != "GET" or task is None or task.get("family") != "runway":
            self._json(404, {"error": "Task not found"})
            return
        record["operation"] = "runway.task"
        task["polls"] += 1
        answer: dict[str, Any] = {"id": task_id, "createdAt": "2025-05-01T00:00:00Z",
                                  "status": "PENDING" if task["polls"] == 1 else "RUNNING"}
        if task["polls"] > task["pending"]:
            if task["fail"]:
                answer.update(status="FAILED", failure="emulated task failure",
                              failureCode="INTERNAL")
            else:
                seconds = 1.0 if int(task["body"].get("duration", 5)) == 5 else 2.0
                clip = video.mp4(canonical_json(task["body"]), width=128, height=80,
                                 seconds=seconds)
                answer.update(status="SUCCEEDED",
                              output=[self._file_adder()(clip, "video/mp4")])
        self._json(200, answer)

    def _sora(self, method: str, video_id: str | None, wants_content: bool, body: bytes,
              record: dict[str, Any]) -> None:
        if method == "POST" and video_id is None:
            record["operation"] = "sora.create"
            parsed = self._parse(body, record)
            if parsed is None:
                return
            fields, uploads, as_json = parsed
            problem = sora.check(fields, uploads, as_json=as_json)
            if problem:
                self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                           "code": None}})
                return
            task_id = "video_" + _uuid(canonical_json(fields) + str(time.monotonic_ns()))[:24]
            with self.state.lock:
                made: dict[str, Any] = {
                    "family": "sora", "id": task_id, "body": fields, "polls": 0,
                    "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                    "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
                self.state.tasks[task_id] = made
            self._json(200, sora.video(made, advance=False))
            return
        with self.state.lock:
            task = self.state.tasks.get(video_id or "")
        if method != "GET" or task is None or task.get("family") != "sora":
            self._json(404, {"error": {"message": "Video not found", "type":
                                       "invalid_request_error", "code": None}})
            return
        if wants_content:
            record["operation"] = "sora.content"
            data = sora.content(task)
            if data is None:
                self._json(409, {"error": {"message": "Video is not ready", "type":
                                           "invalid_request_error", "code": None}})
                return
            self._send(200, data, "video/mp4")
            return
        record["operation"] = "sora.retrieve"
        self._json(200, sora.video(task, advance=True))

    @staticmethod
    def _video_family(method: str, path: str, query: str) -> tuple[str, str | None] | None:
        """(family, task id or None for a submit) of a Luma, Veo or Pika route."""
        routes = contract.load("video_tasks.json")
        for name in ("luma", "veo", "pika"):
            spec = routes[name]
            if method == "POST" and path == spec["submit"]:
                return name, None
            poll_path, _, poll_query = spec["poll"].partition("?")
            if method != "GET":
                continue
            if poll_query:  # the id in the query: /v1/video/query?id=…
                if path == poll_path:
                    return name, parse_qs(query).get("id", [""])[0]
            else:
                prefix = poll_path.replace("{id}", "")
                if path.startswith(prefix) and "/" not in path[len(prefix):]:
                    return name, path[len(prefix):]
        return None

    def _video_task_submit(self, route_family: str, body: bytes,
                           record: dict[str, Any]) -> None:
        chosen: list[str] = []

        def check(fields: dict[str, Any]) -> str | None:
            chosen.append(video_tasks.family_of(route_family, fields))
            return video_tasks.check(chosen[0], fields)

        fields = self._json_submit(body, record, check,
                                   lambda problem: self._error(400, problem))
        if fields is None:
            return
        family = chosen[0]
        task_id = _uuid(canonical_json(fields) + family + str(time.monotonic_ns()))
        if family == "sora_reverse":
            task_id = f"{fields['model']}:task_{task_id.replace('-', '')[:26]}"
        with self.state.lock:
            self.state.tasks[task_id] = {
                "family": "video_task", "family_kind": family, "id": task_id, "body": fields,
                "polls": 0, "fail": self.state.take_fault_locked({"fail-task"}) is not None,
                "stuck": self.state.take_fault_locked({"stuck-task"}) is not None}
        self._json(200, video_tasks.submitted(family, task_id))

    # --- Suno (contracts/suno.json) ------------------------------------------------------
    def _suno_submit(self, action: str, body: bytes, record: dict[str, Any]) -> None:
        fields = self._json_submit(body, record, lambda f: suno.check_submit(action, f),
                                   lambda problem: self._json(400, {
                                       "code": "error", "message": problem, "data": None}))
        if fields is None:
            return
        task_id = _uuid(canonical_json(fields) + str(time.monotonic_ns()))
        task = suno.new_task(action, fields, task_id=task_id,
                             fail=self.state.take_fault({"fail-task"}) is not None,
                             moderate=self.state.take_fault({"moderate-task"}) is not None,
                             stuck=self.state.take_fault({"stuck-task"}) is not None)
        with self.state.lock:
            self.state.tasks[task_id] = task
        self._json(200, {"code": "success", "message": "", "data": task_id})

    def _suno_fetch(self, task_id: str) -> None:
        with self.state.lock:
            task = self.state.tasks.get(task_id)
        if task is None or task.get("family") != "suno":
            self._json(404, {"code": "error", "message": "task_not_exist", "data": None})
            return
        self._json(200, suno.fetch_answer(task, self._file_adder()))


def _recraft_units(operation: str, params: dict[str, Any]) -> int:
    """What Recraft charges for the call, in its units (contracts/recraft.json prices)."""
    prices = contract.load("recraft.json")["prices"]
    if operation in prices["operations"]:
        return int(prices["operations"][operation])
    vector = "vector" in str(params.get("model", ""))
    count = int(params.get("n", 1) or 1)
    return count * int(prices["per_vector_image" if vector else "per_image"])


def _flux_cost(model: str) -> float:
    cost = contract.load("bfl.json")["cost"]
    return float(cost.get(model, cost["default"]))


def _number(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


class EmulatorServer(ThreadingHTTPServer):
    state: EmulatorState  # set by make_server
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client gave up (a timeout test, a killed run): not our problem
        super().handle_error(request, client_address)


def make_server(host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None,
                latency: float = 0.0, faults: list[str] | None = None,
                plain_images: bool = False, kind: str = "gateway",
                pending_polls: int = TASK_PENDING_POLLS) -> EmulatorServer:
    """A ready (not yet serving) emulator of one kind of provider; ``server.state`` holds
    its memory. A task answers ``pending_polls`` polls still running before its result.

    Raises:
        ValueError: an unknown fault or kind of provider.
    """
    state = EmulatorState(api_key=api_key, latency=latency, plain_images=plain_images,
                          kind=kind, pending_polls=pending_polls)
    for text in faults or []:
        state.faults.append(parse_fault(text))
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = EmulatorServer((host, port), handler)
    server.state = state
    return server


@contextlib.contextmanager
def running_emulator(**options: Any) -> Iterator[str]:
    """Serve an emulator on a free 127.0.0.1 port for the duration; yields its base URL."""
    server = make_server("127.0.0.1", 0, **options)
    # a short poll: `shutdown` waits for the serving loop to notice (0.5 s by default,
    # which every `--mock` run would spend at its end)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name="flow-emulator", daemon=True)
    thread.start()
    try:
        yield "http://{}:{}".format(*server.server_address[:2])
    finally:
        server.shutdown()
        server.server_close()
