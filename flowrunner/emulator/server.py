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

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from . import (
    audio,
    contract,
    flux,
    ideogram,
    images,
    kling,
    midjourney,
    minimax,
    openai_images,
    recraft,
    replicate,
    runway,
    sora,
    suno,
    unified_video,
    video,
    video_tasks,
)
from .fault_answers import ANSWERS
from .faults import API_FAULTS, FAULT_KINDS
from .routing import Request, find
from .state import TASK_PENDING_POLLS, EmulatorState, parse_fault

__all__ = ["TASK_PENDING_POLLS", "EmulatorServer", "EmulatorState", "make_server",
           "running_emulator"]

# every family's routes, tried in this order (a path two families could claim goes to the
# first); each family's module lists its own beside its contract
ROUTES = (flux.ROUTES + ideogram.ROUTES + openai_images.ROUTES + sora.ROUTES + minimax.ROUTES
          + runway.ROUTES + video_tasks.ROUTES + replicate.ROUTES + unified_video.ROUTES
          + audio.ROUTES + midjourney.ROUTES + kling.ROUTES + suno.ROUTES + recraft.ROUTES)


class Handler(flux.FluxRoutes, ideogram.IdeogramRoutes, openai_images.OpenAIImagesRoutes,
              sora.SoraRoutes, minimax.MinimaxRoutes, runway.RunwayRoutes,
              video_tasks.VideoTaskRoutes, replicate.ReplicateRoutes,
              unified_video.UnifiedVideoRoutes, audio.AudioRoutes,
              midjourney.MidjourneyRoutes, kling.KlingRoutes, suno.SunoRoutes,
              recraft.RecraftRoutes):
    """An API request: authentication, faults, then the family's route; plus the control
    endpoints and the files the emulator made."""

    server_version = "ElkAPI-emulator/1"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # without it every keep-alive request waits ~40 ms
    state: EmulatorState


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
            self._refuse_key()
            return
        fault = self.state.take_fault(API_FAULTS)
        if fault:
            ANSWERS[fault["kind"]](self, fault, path)
            return
        found = find(ROUTES, self.state.kind, method, path, url.query)
        if found is None:
            self._send(404, b"404 page not found", "text/plain")
            return
        rule, parts = found
        if rule.operation:
            record["operation"] = rule.operation.format(**parts)
        tasks = self.state.tasks
        tasks.submitter.key = self._key
        request = Request(method, path, url.query, body, record, parts)
        if rule.busy is None or not self.state.max_running:
            rule.handle(self, request)
            return
        with self.state.submits:  # the count and the new task, one submit at a time
            if tasks.running(self._key) >= self.state.max_running:
                record["refused"] = "busy"  # the provider's limit on running tasks
                rule.busy(self)
                return
            rule.handle(self, request)

    def _refuse_key(self) -> None:
        """A missing or wrong key, in this kind of provider's words."""
        if self.state.kind == "recraft":  # upstream Recraft's own words
            self._send(401, b"request unauthorized", "text/plain")
        elif self.state.kind == "bfl":
            self._json(403, {"detail": "Not authenticated"})
        else:
            self._error(401, "invalid token", "new_api_error")

    def _authorised(self) -> bool:
        """Whether the request carries the key; notes it (`_key`) for the task limit."""
        if self.state.kind == "gateway":
            key = contract.gateway_key(self.headers, urlsplit(self.path).path)
            expected = self.state.api_key
            self._key = key
            return bool(key) and (expected is None
                                  or key == contract.normalise_gateway_key(expected))
        elif self.state.kind == "bfl":
            key = (self.headers.get("x-key") or "").strip() or None
        else:
            header = self.headers.get("Authorization", "")
            key = header[7:].strip() if header.startswith("Bearer ") else None
        self._key = key
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
                pending_polls: int = TASK_PENDING_POLLS, task_seconds: float = 0.0,
                max_running: int = 0) -> EmulatorServer:
    """A ready (not yet serving) emulator of one kind of provider; ``server.state`` holds
    its memory. A task answers ``pending_polls`` polls still running before its result,
    and runs at least ``task_seconds``; with ``max_running``, a key with that many tasks
    running gets its provider's refusal on a submit.

    Raises:
        ValueError: an unknown fault or kind of provider.
    """
    state = EmulatorState(api_key=api_key, latency=latency, plain_images=plain_images,
                          kind=kind, pending_polls=pending_polls, task_seconds=task_seconds,
                          max_running=max_running)
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
