"""Shared fixtures: a loopback-only network guard, a live emulator, and `flow` runners."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CANARY_KEY = "sk-canary-7f3e9a1c5b2d4e6f8a0b"
# what a local run leaves beside the examples; a fresh clone has none of it
IGNORED = shutil.ignore_patterns(".flow", "assets", "launch", "*.lock")

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise AssertionError(f"test tried to reach {host}: only 127.0.0.1 is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach beyond loopback (the machine has no network; make it loud)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def no_stray_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A test that forgets to choose a cache must not write into the repository."""
    monkeypatch.delenv("FLOW_CACHE_DIR", raising=False)
    monkeypatch.delenv("ELKAPI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)


@dataclass
class Emulator:
    base_url: str
    server: Any

    @property
    def state(self) -> Any:
        return self.server.state

    def requests(self, *, api_only: bool = True) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(r) for r in self.state.requests]

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests()
                if endpoint is None or r.get("endpoint") == endpoint]

    def fault(self, kind: str, count: int = 1, retry_after: float = 0) -> None:
        with self.state.lock:
            self.state.faults.append({"kind": kind, "count": count, "retry_after": retry_after})

    @property
    def pending_polls(self) -> int:
        return int(self.state.tasks.pending_polls)

    @pending_polls.setter
    def pending_polls(self, count: int) -> None:
        """How many polls each task submitted from now on answers still running."""
        self.state.tasks.pending_polls = count

    def reset(self) -> None:
        with self.state.lock:
            self.state.requests.clear()
            self.state.faults.clear()


@pytest.fixture
def emulator() -> Any:
    """A live emulator on a free 127.0.0.1 port that requires CANARY_KEY. Its tasks finish
    at the first poll (a test of what a client does while a task runs sets
    `emulator.pending_polls`; `flow emulator` keeps two)."""
    from flowrunner.emulator.server import make_server

    server = make_server("127.0.0.1", 0, api_key=CANARY_KEY, pending_polls=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield Emulator(f"http://127.0.0.1:{server.server_port}", server)
    server.shutdown()
    server.server_close()


@dataclass
class Completed:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


_DROPPED = ("FLOW_CACHE_DIR", "ELKAPI_API_KEY")  # a test passes them when it means to


def flow(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 120) -> Completed:
    """Run `flow` as a user would, in this process: the real entry point (`cli.main`), its
    exit status, stdout and stderr, with the environment and working folder set for the
    call and put back after. No interpreter starts, so a call costs what the command does.
    `flow_process` starts a real process, for what needs one: signals, a killed run, the
    installed script, a fresh interpreter's state. (``timeout`` is kept for the callers
    that move between the two; in this process nothing can stop a call that hangs.)"""
    import io
    import signal

    from flowrunner.cli import main

    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    saved_signals = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.BytesIO(), io.BytesIO()
    code: Any = 0
    try:
        os.environ.update(env or {})  # (`no_stray_cache` unset the user's key and cache)
        if cwd is not None:
            os.chdir(cwd)
        text_out = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
        text_err = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
        with contextlib.redirect_stdout(text_out), contextlib.redirect_stderr(text_err), \
                _stdin(io.StringIO("")):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code
        text_out.flush()
        text_err.flush()
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for number, handler in saved_signals.items():
            signal.signal(number, handler)
    return Completed(int(code or 0), out.getvalue().decode("utf-8", "replace"),
                     err.getvalue().decode("utf-8", "replace"))


@contextlib.contextmanager
def _stdin(stream: Any) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = stream
    try:
        yield
    finally:
        sys.stdin = saved


def flow_process(*args: str | Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None, timeout: float = 120) -> Completed:
    """Run `flow` in a new process (`python -m flowrunner`), as a user's shell would."""
    full_env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "flowrunner", *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    return Completed(proc.returncode, proc.stdout, proc.stderr)


flow_in_process = flow  # the name earlier tests use


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real S3-compatible store (SeaweedFS) on loopback, for the whole session."""
    from seaweed import running_seaweed, why_not_runnable

    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as store:
        yield store


@pytest.fixture
def run_flow() -> Any:
    return flow


def write_recipe(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def served_emulator(tmp_path: Path) -> Iterator[str]:
    """`flow emulator --port 0` as a user starts it; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "flowrunner", "emulator", "--port", "0",
                             "--api-key", CANARY_KEY], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        yield line.split("listening on ")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
