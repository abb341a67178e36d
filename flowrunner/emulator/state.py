"""What an emulator remembers: its kind of provider, files it made, tasks, the requests it
received and faults waiting to be used."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Set as AbstractSet
from typing import Any

from .faults import FAULT_KINDS

TASK_PENDING_POLLS = 2  # polls a task answers still running before its result (by default)
KINDS = ("gateway", "recraft", "bfl")


def task_uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


def parse_fault(text: str) -> dict[str, Any]:
    """``KIND[:COUNT]`` → fault dict. Raises ValueError for an unknown kind."""
    kind, _, count = text.partition(":")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
    return {"kind": kind, "count": int(count) if count else 1, "retry_after": 1}


class TaskTable(dict[str, dict[str, Any]]):
    """The emulator's tasks by id. Each task notes, as it is added, how many polls it
    answers still pending (`pending`: the server's `pending_polls`), the time before which
    it still runs however often it is polled (`ready_at`, with `task_seconds`: a provider's
    minutes, in the long-task benchmark), and the API key that submitted it."""

    def __init__(self, pending_polls: int, task_seconds: float = 0.0) -> None:
        super().__init__()
        self.pending_polls = pending_polls
        self.task_seconds = task_seconds
        self.submitter = threading.local()  # the key of the request being answered

    def __setitem__(self, task_id: str, task: dict[str, Any]) -> None:
        task.setdefault("pending", self.pending_polls)
        task.setdefault("ready_at", time.monotonic() + self.task_seconds
                        if self.task_seconds else 0.0)
        task.setdefault("key", getattr(self.submitter, "key", None))
        super().__setitem__(task_id, task)

    def running(self, key: str | None) -> int:
        """How many tasks ``key`` submitted still run (the provider's own count)."""
        return sum(1 for task in list(self.values())
                   if task.get("key") == key and still_running(task))


def still_running(task: dict[str, Any]) -> bool:
    """Whether a task still runs: a stuck one always; with `task_seconds`, until its time
    is up, however often (or seldom) it is polled; else while it has pending polls left."""
    if task.get("stuck"):
        return True
    if task.get("ready_at"):
        return time.monotonic() < task["ready_at"]
    return bool(task["polls"] <= task["pending"])


class EmulatorState:
    """Everything the emulator remembers: files, tasks, received requests, pending faults."""

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0,
                 plain_images: bool = False, kind: str = "gateway",
                 pending_polls: int = TASK_PENDING_POLLS, task_seconds: float = 0.0,
                 max_running: int = 0) -> None:
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
        self.tasks = TaskTable(pending_polls, task_seconds)
        # tasks one key may have running; a submit past it gets the provider's refusal
        self.max_running = max_running
        self.submits = threading.Lock()  # with a limit: counting and adding, together
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
