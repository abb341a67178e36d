"""A cache shared by a team and its CI machines: the local cache, read through and written
through to a store (an S3 bucket or a shared folder).

Layout under the store's prefix (the same names as the local cache)::

    objects/<sha256>      artifact bytes, named by the sha256 of those bytes
    results/<key>.json    a result entry (JSON naming its artifacts' sha256), signed with
                          FLOW_CACHE_SECRET when set
    tasks/<key>.json      a submitted task's journal: another machine resumes polling it
    claims/<key>.json     "this machine is calling KEY until EXPIRES", created only if
                          absent (S3 `If-None-Match: *`)

Reads: a local miss asks the store; a hit's objects are downloaded, checked against their
sha256, and stored locally with the entry. Writes: objects first, the entry last, so no
reader ever sees an entry whose objects are missing. A store that fails is reported once
and the run goes on from the local cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..cancellation import Cancellation
from ..errors import CacheError
from ..records import CacheEntry, Claim, TaskRecord, entry_problem
from .cache import Cache
from .cache_key import CACHE_VERSION
from .objectstore import Store, StoreError, Versioned

SECRET_ENV = "FLOW_CACHE_SECRET"
LEASE_ENV = "FLOW_REMOTE_LEASE"
LEASE = 60.0  # seconds a claim lasts unless renewed (every third of it, while held)
SMALL_OBJECT = 1 << 20  # bytes: uploaded without asking whether the store has it
CLAIM_POLL = (0.1, 1.0)  # seconds between looks at another machine's claim: first, most


@dataclass(slots=True)
class RemoteStats:
    """What the remote did in one run, for the summary line."""

    hits: int = 0
    downloaded: int = 0  # bytes
    uploads: int = 0
    uploaded: int = 0  # bytes
    waited: int = 0  # keys another machine was calling
    refused: int = 0  # entries with a bad signature, objects that were corrupt
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def sign(entry: Mapping[str, object], secret: str) -> str:
    """The HMAC-SHA256 of an entry's canonical JSON (its `signature` left out)."""
    body = {name: value for name, value in entry.items() if name != "signature"}
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "hmac-sha256:" + hmac.new(secret.encode(), data.encode(), hashlib.sha256).hexdigest()


class RemoteCache(Cache):
    """The local cache with a shared store behind it (see the module's docstring).

    ``mode`` is "write" (read and write) or "read" (never writes to the store, claims
    included: pull-request jobs from forks). ``warn`` hears each problem once.
    """

    def __init__(self, root: Path, store: Store, *, mode: str = "write",
                 secret: str | None = None, warn: Callable[[str], None] | None = None,
                 readable: bool = True, writable: bool = True,
                 cancel: Cancellation | None = None) -> None:
        super().__init__(root, readable=readable, writable=writable, cancel=cancel)
        self.store = store
        self.mode = mode
        self.secret = secret
        self.warn = warn or (lambda _line: None)
        self.stats = RemoteStats()
        self.available = True
        self.problem: str | None = None  # why the store is not used, when it is not
        self._said: set[str] = set()
        self._absent: set[str] = set()  # keys the store was just asked for and lacked
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = _lease_seconds()
        self._held: dict[str, str] = {}  # keys this process has claimed → claim's version
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._closed = threading.Event()

    # --- health --------------------------------------------------------------------------
    def check(self) -> bool:
        """Ask the store once; on failure, warn and go on without it. True when usable."""
        try:
            self.store.probe()
        except StoreError as exc:
            self._lost(exc)
        return self.available

    def _lost(self, exc: StoreError) -> None:
        if self.available:
            self.available = False
            self.problem = exc.reason
            self.warn(f"remote cache {self.store.url}: {exc.reason}; going on with the "
                      "local cache only")

    def _say_once(self, kind: str, line: str) -> None:
        self.stats.add(refused=1)
        if kind not in self._said:
            self._said.add(kind)
            self.warn(line)

    @property
    def writes(self) -> bool:
        return self.available and self.mode == "write" and self.writable

    # --- reading -------------------------------------------------------------------------
    def lookup(self, key: str, *, verify: bool = False) -> tuple[CacheEntry | None,
                                                                 str | None]:
        entry, problem = super().lookup(key, verify=verify)
        if entry is not None or not self.readable or not self.available:
            return entry, problem
        if key in self._absent:
            return entry, problem
        if self.pull(key):
            return super().lookup(key, verify=verify)
        return entry, problem

    def holds_nothing(self) -> bool:
        return False  # the store may hold what this machine has never seen

    def prefetch(self, keys: Iterable[str], *, threads: int = 16) -> None:
        """Pull, in parallel, every key the local cache lacks (a fresh clone's restore)."""
        missing = [k for k in dict.fromkeys(keys)  # (no zero-argument super() in here)
                   if k not in self._absent and Cache.lookup(self, k)[0] is None]
        if not missing or not self.available or not self.readable:
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="remote") as pool:
            list(pool.map(self.pull, missing))

    def pull(self, key: str) -> bool:
        """Copy ``key``'s entry and objects from the store into the local cache when the
        entry is signed (if a secret is set) and every object matches its sha256."""
        if not self.available:
            return False
        started = time.monotonic()
        try:
            raw = self.store.get(f"results/{key}.json")
            if raw is None:
                self._absent.add(key)
                return False
            entry = self._trusted(key, raw)
            if entry is None:
                self._absent.add(key)
                return False
            fetched = 0
            for artifact in entry.get("artifacts", []):
                sha = artifact["sha256"]
                if super().has_object(sha, artifact.get("bytes")):
                    continue
                blocks = self.store.stream(f"objects/{sha}")
                if blocks is None:
                    self._say_once("missing", f"remote cache: object {sha[:12]}… is missing "
                                   "from the store: its entry is not used; the instance "
                                   "counts as not cached")
                    self._absent.add(key)
                    return False
                # the store keeps them: no fsync here (a copy damaged by a power cut is
                # noticed, by its size or sha256, and fetched again)
                self.ensure()
                if not self.receive_object(sha, blocks, durable=False):
                    self._say_once("corrupt", f"remote cache: object {sha[:12]}… is corrupt "
                                   "(its bytes do not match its sha256): not used; the "
                                   "instance counts as not cached")
                    self._absent.add(key)
                    return False
                fetched += int(artifact.get("bytes") or 0)
            entry.pop("signature", None)
            Cache.put(self, key, cast(CacheEntry, {k: v for k, v in entry.items()
                                                   if k not in ("format", "key")}),
                      durable=False)
        except StoreError as exc:
            self._lost(exc)
            return False
        except CacheError as exc:
            self.warn(f"remote cache: {exc.message}")
            return False
        self.stats.add(hits=1, downloaded=fetched, seconds=time.monotonic() - started)
        return True

    def _trusted(self, key: str, raw: bytes) -> CacheEntry | None:
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and entry.get("format") != CACHE_VERSION:
            return None  # written by another version of flowrunner: not ours to read
        problem = "it is unreadable" if entry is None else \
            entry_problem(entry, key, version=CACHE_VERSION)
        if problem is not None:
            self._say_once("unreadable", f"remote cache: entry {key[:12]}… is invalid "
                           f"({problem})"
                           + (f", so its signature ({SECRET_ENV}) cannot hold"
                              if self.secret is not None else "")
                           + ": not used; the instance counts as not cached")
            return None
        if self.secret is not None:
            signature = entry.get("signature")
            if not isinstance(signature, str) or not hmac.compare_digest(
                    signature, sign(entry, self.secret)):
                self._say_once("signature", f"remote cache: entry {key[:12]}… has "
                               f"{'no' if signature is None else 'a wrong'} signature "
                               f"(checked with {SECRET_ENV}): not used; the instance counts "
                               "as not cached")
                return None
        return entry

    # --- writing -------------------------------------------------------------------------
    def put(self, key: str, entry: CacheEntry, *, durable: bool = True) -> None:
        super().put(key, entry, durable=durable)
        self._absent.discard(key)
        if self.writes:
            self.push(key)

    def push(self, key: str) -> None:
        """Upload ``key``'s objects, then its entry (signed when a secret is set)."""
        started = time.monotonic()
        try:
            entry = json.loads(self.result_path(key).read_bytes())
            if entry_problem(entry, key, version=CACHE_VERSION) is not None:
                return  # not a usable entry (the lookup says why): nothing to share
            sent = 0
            for artifact in entry.get("artifacts", []):
                name = f"objects/{artifact['sha256']}"
                size = int(artifact.get("bytes", 0))
                # named by content: writing it again is harmless, and for a small file
                # cheaper than asking first
                if size < SMALL_OBJECT or not self.store.exists(name):
                    self.store.put_file(name, self.object_file(artifact["sha256"]))
                    sent += size
            if self.secret is not None:
                entry["signature"] = sign(entry, self.secret)
            data = json.dumps(entry, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
            self.store.put(f"results/{key}.json", data)
        except StoreError as exc:
            self._lost(exc)
            return
        except (OSError, ValueError):
            return  # the local entry went away meanwhile: nothing to share
        self.stats.add(uploads=1, uploaded=sent + len(data),
                       seconds=time.monotonic() - started)

    # --- the shared task journal ---------------------------------------------------------
    def read_task(self, key: str) -> TaskRecord | None:
        """The local journal, else the store's: only a submitted task's id and poll URL
        are taken from there (signed, when a secret is set), never an answer."""
        task = super().read_task(key)
        if task is not None or not self.available:
            return task
        try:
            raw = self.store.get(f"tasks/{key}.json")
        except StoreError as exc:
            self._lost(exc)
            return None
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        if self.secret is not None and not (
                isinstance(data, dict) and isinstance(data.get("signature"), str)
                and hmac.compare_digest(data["signature"], sign(data, self.secret))):
            self._say_once("task-signature", f"remote cache: the task journal of {key[:12]}… "
                           f"is not signed with {SECRET_ENV}: not used")
            return None
        shared = TaskRecord.parse(data)
        if shared is None or shared.id is None:
            return None
        return TaskRecord(shared.id, shared.poll_url, shared.endpoint)

    def write_task(self, key: str, task: TaskRecord) -> None:
        """Journal locally; a submitted task (not a kept answer: that stays on this
        machine) is shared, so another machine can resume it."""
        super().write_task(key, task)
        if self.writes and task.id is not None:
            shared = TaskRecord(task.id, task.poll_url, task.endpoint).to_json()
            if self.secret is not None:
                shared["signature"] = sign(shared, self.secret)
            try:
                self.store.put(f"tasks/{key}.json", json.dumps(shared, sort_keys=True).encode())
            except StoreError as exc:
                self._lost(exc)

    def drop_task(self, key: str) -> None:
        super().drop_task(key)
        if self.writes:
            try:
                self.store.delete(f"tasks/{key}.json")
            except StoreError as exc:
                self._lost(exc)

    # --- claims: one machine calls a key -------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str, *, timeout: float = 600.0,
             on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """The local per-key lock, then the key's claim in the store: another machine's
        claim is waited out (its result then comes from the store), or taken over once
        its lease has run out."""
        deadline = time.monotonic() + max(0.0, timeout)
        with super().lock(key, timeout=timeout, on_wait=on_wait):
            claimed = self._claim(key, deadline, on_wait)
            self._absent.discard(key)  # look again: the other machine may have finished
            try:
                yield
            finally:
                if claimed:
                    self._release(key)

    def _claim_body(self) -> bytes:
        return json.dumps({"owner": self._owner, "expires": time.time() + self.lease}).encode()

    def _hold(self, key: str, version: str) -> None:
        with self._held_lock:
            self._held[key] = version
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, daemon=True,
                                                 name="flow-claims")
                self._renewer.start()

    def _release(self, key: str) -> None:
        with self._held_lock:
            version = self._held.pop(key, None)
        if version is not None:
            with contextlib.suppress(StoreError):  # only our own claim: never a newer one
                self.store.remove(f"claims/{key}.json", version)

    def _renew(self) -> None:
        """Keep this process's claims alive (each only while it is still ours: a claim
        another machine took over after it ran out is theirs); a machine that dies lets
        them run out."""
        while not self._closed.wait(self.lease / 3):
            with self._held_lock:
                held = list(self._held.items())
            for key, version in held:
                try:
                    renewed = self.store.replace(f"claims/{key}.json", self._claim_body(),
                                                 version)
                except StoreError:
                    continue  # the next round tries again
                with self._held_lock:
                    if renewed is not None and key in self._held:
                        self._held[key] = renewed
                    elif renewed is None and self._held.pop(key, None) is not None:
                        self.warn(f"remote cache: another machine took over the claim of "
                                  f"{key[:12]}… (this one could not renew it in time)")

    def close(self) -> None:
        """Release the claims still held (an interrupted run): another machine takes the
        keys over at once and resumes their tasks from the shared journal."""
        self._closed.set()
        with self._held_lock:
            held = list(self._held)
        for key in held:
            self._release(key)
        super().close()

    def _claim(self, key: str, deadline: float, on_wait: Callable[[str], None] | None
               ) -> bool:
        """True once this machine holds the claim; False when it need not (the result is
        in the store, or the store is read-only or gone).

        A claim is created only where none is (whole or not at all), and one whose lease
        ran out is taken over only by a conditional write on the version read (S3
        `If-Match`): of two machines taking it over at once, one wins. A claim that cannot
        be read is held until it is older than a lease.

        Raises:
            CacheError: another machine's claim outlived ``deadline``.
            Cancelled: the run was cancelled while waiting.
        """
        if not self.writes:
            return False
        name = f"claims/{key}.json"
        pause, said = CLAIM_POLL[0], False
        try:
            while True:
                created = self.store.create(name, self._claim_body())
                if created is not None:
                    self._hold(key, created)
                    return True
                if self.store.exists(f"results/{key}.json"):
                    return False
                current = self.store.read(name)
                if current is not None and _ran_out(current, self.lease):
                    # its machine stopped without releasing it: take it over, unless
                    # somebody already has (the claim changed since it was read)
                    taken = self.store.replace(name, self._claim_body(), current.version)
                    if taken is not None:
                        self._hold(key, taken)
                        return True
                # else held, or released (or taken over) meanwhile: look again after a
                # pause, within the deadline (a store that keeps answering "there" to the
                # create and "not there" to the read never spins this loop)
                if current is not None and not said:
                    self.stats.add(waited=1)
                    if on_wait is not None:
                        on_wait(f"waiting for another machine's call of {key[:12]}… "
                                f"({self.store.url})")
                    said = True
                if time.monotonic() >= deadline:
                    raise CacheError(f"another machine held the claim of {key[:12]}… until "
                                     "this step's timeout", hint="raise the step's `timeout`, "
                                     "or delete claims/ in the remote if no machine runs")
                self.cancel.sleep(pause, f"waiting for the claim of {key[:12]}…")
                pause = min(CLAIM_POLL[1], pause * 1.5)
        except StoreError as exc:
            self._lost(exc)
            return False

    def wait_for(self, key: str, deadline: float) -> CacheEntry | None:
        """Wait (until ``deadline``) for another machine to store ``key``'s result."""
        pause = CLAIM_POLL[0]
        while self.available:
            self._absent.discard(key)
            entry, _ = self.lookup(key)
            if entry is not None or time.monotonic() >= deadline:
                return entry
            self.cancel.sleep(pause, f"waiting for the result of {key[:12]}…")
            pause = min(CLAIM_POLL[1], pause * 1.5)
        return None

    # --- the summary ---------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """What the remote did, for `--json` (and why it was not used, when it was not)."""
        stats = self.stats
        return {"url": self.store.url, "mode": self.mode, "used": self.available,
                "problem": self.problem, "hits": stats.hits, "bytes_downloaded": stats.downloaded,
                "uploads": stats.uploads, "bytes_uploaded": stats.uploaded,
                "waited_on_other_machines": stats.waited, "refused": stats.refused,
                "transfer_seconds": round(stats.seconds, 3)}

    def summary(self) -> str:
        if not self.available:
            return f"remote cache {self.store.url}: not used ({self.problem})"
        stats = self.stats
        parts = [f"{stats.hits} hit{'s' * (stats.hits != 1)} ({_size(stats.downloaded)})"]
        if self.mode == "read":
            parts.append("read-only: nothing uploaded")
        else:
            parts.append(f"{stats.uploads} upload{'s' * (stats.uploads != 1)} "
                         f"({_size(stats.uploaded)})")
        if stats.waited:
            parts.append(f"waited on {stats.waited} call(s) of other machines")
        if stats.refused:
            parts.append(f"{stats.refused} refused")
        return (f"remote cache {self.store.url}: {', '.join(parts)}; "
                f"{stats.seconds:.1f} s of transfers")

    # --- inspection (flow cache ls|gc --remote) -------------------------------------------
    def remote_results(self, *, threads: int = 16) -> list[tuple[str, CacheEntry | None]]:
        """(key, entry or None when unreadable) of every result in the store, fetched in
        parallel.

        Raises:
            StoreError: the store cannot be listed or read.
        """
        keys = [name[len("results/"):-len(".json")] for name, _ in self.store.names("results/")
                if name.endswith(".json")]

        def read(key: str) -> tuple[str, CacheEntry | None]:
            raw = self.store.get(f"results/{key}.json")
            with contextlib.suppress(ValueError):
                entry = json.loads(raw) if raw else None
                return key, cast(CacheEntry, entry) if isinstance(entry, dict) else None
            return key, None

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="remote") as pool:
            return list(pool.map(read, keys))

    def remote_objects(self) -> Iterator[tuple[str, int]]:
        """(sha256, bytes) of every object in the store."""
        for name, size in self.store.names("objects/"):
            yield name[len("objects/"):], size

    def share(self, keys: list[str], *, threads: int = 16) -> tuple[int, int]:
        """Upload the local results of ``keys`` that the store lacks (objects first, entry
        last, signed as usual): (uploaded, already there).

        Raises:
            StoreError: the store failed.
        """
        def one(key: str) -> bool:
            if self.store.exists(f"results/{key}.json"):
                return False
            self.push(key)
            if not self.available:
                raise StoreError(self.problem or "the store failed")
            return True

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="remote") as pool:
            sent = sum(pool.map(one, keys))
        return sent, len(keys) - sent

    def remove_remote(self, names: list[str], *, threads: int = 16) -> None:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="remote") as pool:
            list(pool.map(self.store.delete, names))


def _lease_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(LEASE_ENV) or LEASE))
    except ValueError:
        return LEASE


def _ran_out(claim: Versioned, lease: float) -> bool:
    """Whether a claim's lease has run out: by the time it names, or, when it cannot be
    read, by its age in the store (a claim being written is never taken for run out)."""
    parsed = Claim.parse(claim.data)
    if parsed is not None:
        return parsed.expires < time.time()
    return time.time() - claim.modified > lease


def _size(count: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def open_remote(root: Path, url: str, *, mode: str = "write",
                warn: Callable[[str], None] | None = None, readable: bool = True,
                writable: bool = True, threads: int = 16,
                cancel: Cancellation | None = None) -> RemoteCache:
    """The local cache at ``root`` with the store ``url`` names behind it, checked once.

    Raises:
        UsageError: the URL is not a remote cache URL.
    """
    from .objectstore import open_store

    cache = RemoteCache(root, open_store(url, connections=threads), mode=mode,
                        secret=os.environ.get(SECRET_ENV) or None, warn=warn,
                        readable=readable, writable=writable, cancel=cancel)
    cache.check()
    return cache


def inspection_cache(root: Path, url: str | None) -> Cache:
    """The cache a command that only looks (plan, status, why, diff) reads. With a remote,
    what it finds there is pulled into the local cache, so the run that follows is fast;
    a remote that does not answer is a warning on stderr."""
    if not url:
        return Cache(root, writable=False)
    def warn(line: str) -> None:
        sys.stderr.write(f"flow: warning: {line}\n")

    return open_remote(root, url, warn=warn)
