"""The gallery, served live on 127.0.0.1 for `flow watch`: the recipe's folder as files
(the gallery page is in its output folder, its reference images beside the recipe), and
`/events`, a stream of server-sent events that tells the open page to refresh itself
(`updated`, with the instances made anew, which the page highlights) or shows a problem
(`problem`, with its file:line:col and hint).

Only loopback, only the Host names of loopback (a page elsewhere cannot read it through
DNS rebinding), never a dotfile or a dot-folder (.env, .git, .flow), never outside the
recipe's folder.
"""

from __future__ import annotations

import json
import mimetypes
import os
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

# added to the gallery page as it is served: refresh on `updated`, show `error`s
LIVE_SCRIPT = """
<style>
.flow-new { outline: 4px solid #f59e0b; outline-offset: 2px; }
#flow-live { position: fixed; bottom: 1rem; right: 1rem; padding: .5rem .8rem;
  border-radius: 6px; background: #1f2937; color: #fff; font: 13px system-ui; z-index: 9; }
#flow-live.error { background: #b91c1c; white-space: pre-wrap; max-width: 60ch; }
</style>
<div id="flow-live">watching</div>
<script>
(function () {
  var status = document.getElementById("flow-live");
  var changed = new URLSearchParams(location.search).get("changed");
  (changed ? changed.split("\\n") : []).forEach(function (id) {
    var card = document.getElementById(id);
    if (card) { card.classList.add("flow-new"); }
  });
  var events = new EventSource("/events");
  events.addEventListener("running", function () {
    status.className = ""; status.textContent = "running…";
  });
  events.addEventListener("updated", function (event) {
    var data = JSON.parse(event.data);
    location.replace((data.page || location.pathname) + "?changed=" +
                     encodeURIComponent(data.changed.join("\\n")) + "&run=" + data.run);
  });
  events.addEventListener("problem", function (event) {
    var data = JSON.parse(event.data);
    status.className = "error";
    status.textContent = data.message + (data.hint ? "\\nhint: " + data.hint : "");
  });
})();
</script>
"""


class Broadcast:
    """Events for every open page: each subscriber has its own queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue[tuple[str, str] | None]] = []
        self.last: tuple[str, str] | None = None  # a page that connects late sees it

    MAX_PAGES = 32  # open pages (each holds a thread while it listens)

    def admit(self) -> bool:
        """Whether another page may listen."""
        with self._lock:
            return len(self._queues) < self.MAX_PAGES

    def subscribe(self) -> queue.Queue[tuple[str, str] | None]:
        subscriber: queue.Queue[tuple[str, str] | None] = queue.Queue()
        with self._lock:
            self._queues.append(subscriber)
            if self.last is not None and self.last[0] == "problem":
                subscriber.put(self.last)
        return subscriber

    def unsubscribe(self, subscriber: queue.Queue[tuple[str, str] | None]) -> None:
        with self._lock:
            if subscriber in self._queues:
                self._queues.remove(subscriber)

    def send(self, kind: str, data: dict[str, Any]) -> None:
        event = (kind, json.dumps(data))
        with self._lock:
            self.last = event
            for subscriber in self._queues:
                subscriber.put(event)

    def close(self) -> None:
        with self._lock:
            for subscriber in self._queues:
                subscriber.put(None)


class LiveGallery(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, folder: Path, page: Path, port: int) -> None:
        self.folder = folder.resolve()
        self.page = page  # the gallery page, inside `folder`
        self.events = Broadcast()
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        """The gallery page's address (the root until a run has written it)."""
        page = self.page.resolve()
        relative = page.relative_to(self.folder).as_posix() if page.is_file() else ""
        return f"http://127.0.0.1:{self.server_address[1]}/{relative}"

    def close(self) -> None:
        self.events.close()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: LiveGallery
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the terminal shows runs, not requests

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            self._send(403, b"forbidden: only loopback names", "text/plain")
            return
        path = unquote(urlsplit(self.path).path)
        if path == "/events":
            self._stream()
            return
        try:
            target = self._file(path)
        except (ValueError, OSError):  # a NUL byte, a name too long: no such file
            target = None
        if target is None:
            self._send(404, b"not found", "text/plain")
            return
        if target != self.server.page.resolve():
            self._send_file(target)
            return
        try:  # read, not asked first: a run may be replacing it right now
            page = target.read_bytes()
        except OSError:  # no gallery yet (the first run failed): the live part only
            page = b"<!doctype html><title>flow watch</title><body><p>No gallery yet.</p></body>"
        body = page.replace(b"</body>", LIVE_SCRIPT.encode() + b"</body>", 1)
        self._send(200, body, "text/html; charset=utf-8")

    def _send_file(self, target: Path) -> None:
        """A file of the folder, streamed, sandboxed (an SVG cannot script this origin)."""
        import shutil

        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        try:
            handle = open(target, "rb")  # opened, not asked first: a run may remove it
        except OSError:
            self._send(404, b"not found", "text/plain")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", "sandbox")
            self.end_headers()
            shutil.copyfileobj(handle, self.wfile, 1 << 16)

    def _file(self, path: str) -> Path | None:
        """The file a path names inside the folder; None for a dotfile, a folder, or one
        outside (`..`, a symlink that leads out)."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self.server.page.resolve()
        if any(p.startswith(".") for p in parts):
            return None
        target = (self.server.folder / Path(*parts)).resolve()
        if target == self.server.page.resolve():
            return target  # the gallery page (a placeholder until a run writes it)
        if not target.is_relative_to(self.server.folder) or not target.is_file():
            return None
        return target

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        if not self.server.events.admit():
            self._send(503, b"too many open pages", "text/plain")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        subscriber = self.server.events.subscribe()
        try:
            self.wfile.write(b": connected\n\n")
            self.wfile.flush()
            while True:
                try:
                    event = subscriber.get(timeout=15)
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")  # notices a closed page
                    self.wfile.flush()
                    continue
                if event is None:
                    return
                kind, data = event
                self.wfile.write(f"event: {kind}\ndata: {data}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            self.server.events.unsubscribe(subscriber)
            self.close_connection = True
