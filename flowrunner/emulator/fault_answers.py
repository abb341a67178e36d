"""What each fault on an API request answers instead of the provider (faults.py lists and
describes them): a table from fault kind to answer, read by server.py's dispatch."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from .exchange import Exchange


def _bad_json(h: Exchange, _fault: dict[str, Any], _path: str) -> None:
    h._send(200, b'{"data": [{"url": ', "application/json")


def _reset(h: Exchange, _fault: dict[str, Any], _path: str) -> None:
    # SO_LINGER 0: close() sends RST, as a crashed proxy would
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.close_connection = True
    h.connection.close()


def _echo_auth(h: Exchange, _fault: dict[str, Any], _path: str) -> None:
    echoed = "\n".join(f"{k}: {v}" for k, v in h.headers.items())
    h._error(400, f"bad request; you sent:\n{echoed}")


def _redirect(h: Exchange, fault: dict[str, Any], path: str) -> None:
    h._send(307, b"", "text/plain", {"Location": fault["location"] + path})


def _slow_json(h: Exchange, _fault: dict[str, Any], _path: str) -> None:
    body = b'{"data": []}' + b" " * 200
    _start(h, "application/json", len(body))
    for byte in body:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        time.sleep(0.05)


def _huge_json(h: Exchange, fault: dict[str, Any], _path: str) -> None:
    size = int(fault.get("bytes", 64 << 20))
    _start(h, "application/json", size)
    h.wfile.write(b'{"pad": "')
    block = b"x" * 65536
    left = size - 11
    while left > 0:
        h.wfile.write(block[:min(left, len(block))])
        left -= len(block)
    h.wfile.write(b'"}')


def _status(h: Exchange, fault: dict[str, Any], _path: str) -> None:
    status = int(fault["kind"])
    headers = {"Retry-After": str(fault.get("retry_after", 1))} if status == 429 else {}
    h._json(status, {"error": {"message": f"emulated HTTP {status}", "type": "upstream_error",
                               "code": status}}, headers)


def _start(h: Exchange, content_type: str, length: int) -> None:
    h.send_response(200)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(length))
    h.end_headers()


ANSWERS: dict[str, Callable[[Exchange, dict[str, Any], str], None]] = {
    "bad-json": _bad_json, "reset": _reset, "echo-auth": _echo_auth, "redirect": _redirect,
    "slow-json": _slow_json, "huge-json": _huge_json,
    **{status: _status for status in ("429", "500", "502", "503", "504", "524")},
}
