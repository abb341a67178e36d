"""The plumbing every route's handler shares: sending answers (in the provider kind's error
shape), parsing JSON and multipart bodies into fields and uploads, serving made files.

Each family's handlers subclass `Exchange` (kling.py's `KlingRoutes`, …); server.py's
`Handler` is all of them, plus dispatch, authentication, faults and control endpoints.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import ssl
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from .routing import Request
from .state import EmulatorState

__all__ = ["Exchange", "Request"]


class Exchange(BaseHTTPRequestHandler):
    """One request and its answer (http.server's handler), with the emulator's memory."""

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

    def _busy(self) -> None:
        """Too many tasks running for this key, as new-api gateways answer it: 429."""
        self._json(429, {"error": {"message": "too many tasks running for this key, try "
                                              "again later", "type": "rate_limit_error",
                                   "code": "too_many_tasks"}}, {"Retry-After": "1"})

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

    def _file_adder(self) -> Any:
        base = self._base()

        def add_file(data: bytes, media_type: str) -> str:
            return f"{base}/files/{self.state.add_file(data, media_type)}"

        return add_file
