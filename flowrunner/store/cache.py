"""The content-addressed cache: artifact bytes by sha256, one result JSON per cache key.

Layout under the cache root (default `.flow/cache` beside the recipe)::

    objects/<aa>/<sha256>     artifact bytes, named by their own digest (never by URL:
                              provider URLs expire and differ per call)
    results/<aa>/<key>.json   response, outputs, artifact digests and credits of one call
    tasks/<key>.json          journal of a submitted task (its id), until its result is stored
    locks/<key>.lock          locked while a process computes that key; removed on release
    runs/<id>.json            stamps of successful runs (see kit/stamp.py)
    tmp/                      partial files; renamed into place only when whole

Every write is temp file + os.replace, so a kill never leaves a partial entry; result
entries (and the task journal) are fsynced first, so a power cut leaves each either whole
or absent (an object lost with the power is noticed by its entry's size and sha256).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .._json import canonical_json
from ..cancellation import Cancellation
from ..errors import CacheError
from ..records import CacheEntry, TaskRecord, entry_problem, is_sha256
from .cache_key import CACHE_VERSION

_README = """This folder is flowrunner's cache.

objects/  artifact files by sha256      results/  one JSON per call, by cache key
tasks/    submitted tasks being polled  locks/    held while a call is in flight

It is safe to delete: the next `flow run` calls again what it needs (and pays for it).
Do not commit it; commit the recipe's .lock file instead.
"""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_FILE_MODE = 0o666  # the kernel takes the umask off, as for any file the user makes
_TEMP_NAMES = itertools.count()


def _temp_name(folder: str, stem: str) -> str:
    """A temp file's name in ``folder``, unique in this process (by pid and counter)."""
    return os.path.join(folder, f"{stem}-{os.getpid()}-{next(_TEMP_NAMES)}")


FOLDER_ATTEMPTS = 3  # opens retried after making a missing folder (it may vanish again)


def _create_temp(target: str | Path) -> tuple[int, str]:
    """A fresh file beside ``target`` (O_EXCL: never someone else's file), open for
    writing: (descriptor, name). When the open says the folder is missing, the folder is
    made (or found made by someone else meanwhile) and the open tried again."""
    folder = os.path.dirname(target)
    attempts = 0
    while True:
        tmp = _temp_name(folder, ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         _FILE_MODE)
            return fd, tmp
        except FileExistsError:
            continue
        except FileNotFoundError:  # the folder is new (a first entry under its prefix)
            attempts += 1
            if not folder or attempts > FOLDER_ATTEMPTS:
                raise
            os.makedirs(folder, exist_ok=True)  # made meanwhile by another: fine


def _fill_new(target: str | Path, fill: Callable[[int], None], *, durable: bool,
              accept: Callable[[], None] | None = None) -> None:
    """Create a fresh file beside ``target``, let ``fill`` write it (given its descriptor),
    then, unless ``accept`` raises, rename it into place. ``durable``: on the disk before
    the rename (survives a power cut). Nothing is left behind when anything fails."""
    fd, tmp = _create_temp(target)
    try:
        try:
            fill(fd)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if accept is not None:
            accept()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_new(target: str | Path, blocks: Iterable[bytes], *, durable: bool,
               accept: Callable[[str], None] | None = None) -> str:
    """Write ``blocks`` to a fresh file beside ``target``, hashing them; then, unless
    ``accept`` (given the sha256) raises, rename it into place (see `_fill_new`). Returns
    the sha256. Plain `os` calls: restores write thousands of these, and mkstemp plus a
    buffered file cost a third of it."""
    digest = hashlib.sha256()

    def fill(fd: int) -> None:
        for block in blocks:
            digest.update(block)
            _write_fd(fd, block)

    _fill_new(target, fill, durable=durable,
              accept=None if accept is None else lambda: accept(digest.hexdigest()))
    return digest.hexdigest()


# copy_file_range cannot copy here (an old kernel, another file system, a special file)
_NO_RANGE_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP,
                  errno.EBADF}


def _copy_new(source: str, target: str | Path) -> None:
    """Copy ``source`` to a fresh file beside ``target`` inside the kernel (no bytes
    through Python), then rename it into place; no hashing: for an object this run has
    just checked."""
    src = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        _fill_new(target, lambda fd: _copy_fd(src, fd), durable=False)
    finally:
        os.close(src)


def _copy_fd(src: int, dst: int) -> None:
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        try:
            while copy_range(src, dst, 1 << 30):
                pass
            return
        except OSError as exc:
            if exc.errno not in _NO_RANGE_COPY:
                raise
        os.lseek(src, 0, os.SEEK_SET)  # start again, through Python
        os.lseek(dst, 0, os.SEEK_SET)
        os.ftruncate(dst, 0)
    while block := os.read(src, 1 << 20):
        _write_fd(dst, block)


def _write_fd(fd: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` (a write may take part of what it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_all(handle: BinaryIO, data: bytes | bytearray) -> None:
    """Write all of ``data`` to an unbuffered file (which may take part of it per call)."""
    _write_fd(handle.fileno(), data)


def atomic_write_bytes(target: Path | str, data: bytes, *, durable: bool = True) -> str:
    """Write ``data`` to ``target`` so that readers see the old file or the whole new one;
    ``durable``: on the disk before it is renamed into place (survives a power cut).
    Returns the sha256 of ``data``."""
    return _write_new(target, (data,), durable=durable)


def create_new(target: Path | str, data: bytes) -> bool:
    """Create ``target`` holding ``data`` unless it exists: a temp file written whole, then
    linked into place (the link fails when the name is taken; no check first). False when
    it existed."""
    fd, tmp = _create_temp(target)
    try:
        try:
            _write_fd(fd, data)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_if_changed(target: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds exactly it (so committed
    files keep their bytes and mtimes when nothing changed); True when written."""
    try:
        if target.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_bytes(target, text.encode())
    return True


def copy_atomic(source: Path | str, target: Path | str, *, expect_sha256: str | None = None,
                durable: bool = True) -> str:
    """Copy ``source`` to ``target`` atomically, hashing on the way.

    Plain `os` calls: restoring thousands of small assets is bound by system calls, and
    buffered files add three per file (a terminal check, a seek, a mode change).

    Raises:
        CacheError: the bytes read do not match ``expect_sha256`` (the source is corrupt).
    """
    def matches(actual: str) -> None:
        if expect_sha256 and actual != expect_sha256:
            raise CacheError(f"cache object {source} is corrupt (sha256 {actual[:12]}…, "
                             f"expected {expect_sha256[:12]}…)")

    src = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        return _write_new(target, iter(lambda: os.read(src, 1 << 20), b""), durable=durable,
                          accept=matches)
    finally:
        os.close(src)


LINK_MODES = ("copy", "hardlink")
# a hard link cannot be made here: another filesystem, a filesystem without links, too many
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def place_file(source: str, target: str | Path, *, sha256: str, link: bool = False,
               checked: bool = False) -> None:
    """Put cache object ``source`` (named by ``sha256``) at ``target``: atomically, and only
    once its bytes match ``sha256``; no fsync (a saved file can always be restored again).

    ``checked``: the object's bytes were hashed by this run a moment ago (it was just
    downloaded, or found in place and hashed, by `Cache.adopt_object`): not hashed again;
    a copy is made inside the kernel (a large video's copy costs no Python time).

    ``link``: a hard link to the object instead of a copy, as DVC's `hardlink` cache type:
    no new inode and no data written, which is most of a restore's cost. The object is made
    read-only first, so an editor cannot write through the link; one that does anyway (root
    ignores the mode) corrupts the object, and the next read of it notices. Where no link
    can be made (another filesystem), a copy.

    Raises:
        CacheError: the object's bytes do not match ``sha256``.
    """
    if not link:
        if checked:
            _copy_new(source, target)
        else:
            copy_atomic(source, target, expect_sha256=sha256, durable=False)
        return
    actual = sha256 if checked else sha256_file(Path(source))
    if actual != sha256:
        raise CacheError(f"cache object {source} is corrupt (sha256 {actual[:12]}…, "
                         f"expected {sha256[:12]}…)")
    folder = os.path.dirname(target)
    tmp = _temp_name(folder, ".tmp")
    try:
        mode = os.stat(source).st_mode
        if mode & 0o222:  # another user's object stays writable: then a copy, below
            os.chmod(source, mode & ~0o222)
        try:
            os.link(source, tmp)
        except FileNotFoundError:
            if not folder:
                raise
            os.makedirs(folder, exist_ok=True)  # new (a missing source: the link says again)
            os.link(source, tmp)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        copy_atomic(source, target, expect_sha256=sha256, durable=False)
        return
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Cache:
    """A cache folder. ``readable``/``writable`` implement --no-cache and `cache: false`."""

    def __init__(self, root: Path, *, readable: bool = True, writable: bool = True,
                 cancel: Cancellation | None = None) -> None:
        self.root = root
        self.readable = readable
        self.writable = writable
        self.cancel = cancel or Cancellation()  # ends waits for locks (and claims)
        self._ready = False
        self._empty: bool | None = None  # no results/ folder yet: every lookup misses
        # sha256 of each entry this run read or wrote, for the run stamp (no second read)
        self._entry_digests: dict[str, bytes] = {}

    def ensure(self) -> None:
        if self._ready:
            return
        try:
            for sub in ("objects", "results", "tasks", "locks", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            create_new(self.root / "README", _README.encode())
            if self.root.parent.name == ".flow":
                create_new(self.root.parent / ".gitignore",
                           b"# flowrunner's cache: never commit it\n*\n")
        except OSError as exc:
            raise CacheError(f"cannot create the cache at {self.root}: {exc.strerror or exc}",
                             hint="pass a writable folder with --cache-dir or FLOW_CACHE_DIR"
                             ) from exc
        self._ready = True

    # --- objects -------------------------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        return Path(self.object_file(sha256))

    def object_file(self, sha256: str) -> str:
        """The object's path as a string (cheaper: this runs per artifact of every hit)."""
        return f"{self.root}/objects/{sha256[:2]}/{sha256}"

    def has_object(self, sha256: str, size: int | None = None) -> bool:
        try:  # a plain string path: this runs for every artifact of every cache hit
            stat = os.stat(self.object_file(sha256))
        except OSError:
            return False
        return size is None or stat.st_size == size

    def verify_object(self, sha256: str) -> bool:
        path = self.object_path(sha256)
        try:
            return sha256_file(path) == sha256
        except OSError:
            return False

    def temp_file(self) -> tuple[BinaryIO, Path]:
        """A new temp file inside the cache, on the same file system as objects/, with the
        objects' mode (named by process and counter: cheaper than mkstemp's random names).
        Unbuffered (its writes are the network's blocks; a buffer only adds seeks): a
        write may take part of what it is given, so write with `write_all`."""
        self.ensure()
        while True:
            name = _temp_name(f"{self.root}/tmp", "part")
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL
                             | getattr(os, "O_BINARY", 0), _FILE_MODE)
            except FileExistsError:
                continue
            return os.fdopen(fd, "w+b", buffering=0), Path(name)

    def receive_object(self, sha256: str, blocks: Iterable[bytes], *,
                       durable: bool = True) -> bool:
        """Store the object that ``blocks`` stream, hashed on the way, under ``sha256``;
        False (and nothing stored) when the bytes do not match it. Memory stays bounded
        by one block, whatever the object's size."""
        class Mismatch(Exception):
            pass

        def matches(actual: str) -> None:
            if actual != sha256:
                raise Mismatch

        try:
            _write_new(self.object_file(sha256), blocks, durable=durable, accept=matches)
        except Mismatch:
            return False
        return True

    def adopt_object(self, temp: Path, sha256: str, handle: BinaryIO) -> Path:
        """Move a verified temp file (from `temp_file`, still open as ``handle``) into
        objects/ under its digest (a no-op if the object is there with these bytes; one
        there with other bytes, damaged, is replaced).

        Not synced to the disk: one fsync per call goes to its result entry, which names
        the object with its size and sha256. A power cut that loses the object's bytes
        but keeps the entry is noticed at the next lookup ("cache object … was corrupt")
        and fetched again; a kill cannot lose them (the rename comes after the write)."""
        target = self.object_file(sha256)
        try:
            if os.stat(target).st_size == os.fstat(handle.fileno()).st_size and \
                    sha256_file(Path(target)) == sha256:
                temp.unlink(missing_ok=True)
                return Path(target)
        except OSError:
            pass
        try:
            handle.flush()
            try:
                os.replace(temp, target)
            except FileNotFoundError:  # the object's folder is new
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise CacheError(f"cannot store an artifact in the cache: {exc.strerror or exc}",
                             hint="free some disk space, or move the cache with --cache-dir"
                             if exc.errno == errno.ENOSPC else None) from exc
        return Path(target)

    # --- results -------------------------------------------------------------------------
    def result_path(self, key: str) -> Path:
        return Path(self.result_file(key))

    def result_file(self, key: str) -> str:
        """The entry's path as a string (cheaper: this runs several times per call)."""
        return f"{self.root}/results/{key[:2]}/{key}.json"

    def entry_sha256(self, key: str) -> str | None:
        """The sha256 of ``key``'s entry as this run last read or wrote it, if it did."""
        digest = self._entry_digests.get(key)
        return digest.hex() if digest is not None else None

    def get(self, key: str) -> CacheEntry | None:
        """The stored result of ``key``, or None when missing, unreadable or incomplete.

        An entry whose artifact objects are gone or have the wrong size counts as missing.
        """
        return self.lookup(key)[0]

    def holds_nothing(self) -> bool:
        """Whether a read-only look (plan, status) can tell at once that no result is
        here (no results/ folder): then no key needs computing to miss."""
        if not self.readable:
            return True
        if self._empty is None and not self.writable:
            self._empty = not (self.root / "results").is_dir()
        return bool(self._empty)

    def lookup(self, key: str, *, verify: bool = False) -> tuple[CacheEntry | None,
                                                                 str | None]:
        """(entry, problem): the entry when usable, else why not (None when simply absent).

        With ``verify``, every artifact object is hashed against its name.
        """
        if not self.readable:
            return None, None
        if self._empty is None and not self.writable:
            # read-only look (plan, status): nothing else writes here meanwhile that we
            # must see; a run (writable) always looks, as another process may fill it
            self._empty = not (self.root / "results").is_dir()
        if self._empty:
            return None, None
        try:
            with open(self.result_file(key), "rb") as handle:
                raw = handle.read()
        except OSError:
            return None, None
        try:
            entry = json.loads(raw)
        except ValueError:
            return None, f"cache entry {key[:12]}… is unreadable"
        if isinstance(entry, dict) and entry.get("format") != CACHE_VERSION:
            return None, None  # another version's entry: not ours to read
        problem = entry_problem(entry, key, version=CACHE_VERSION)
        if problem is not None:
            return None, f"cache entry {key[:12]}… is invalid ({problem})"
        for artifact in entry.get("artifacts", []):
            sha = artifact["sha256"]
            if not self.has_object(sha):
                return None, f"cache object {sha[:12]}… is missing"
            if not self.has_object(sha, artifact.get("bytes")) or (
                    verify and not self.verify_object(sha)):
                return None, f"cache object {sha[:12]}… was corrupt"
        self._entry_digests[key] = hashlib.sha256(raw).digest()
        return entry, None

    def close(self) -> None:
        """Let go of what this run holds (a shared cache's claims)."""

    def wait_for(self, key: str, deadline: float) -> CacheEntry | None:
        """``key``'s result once another machine has stored it; a local cache has no other
        machine: it looks once."""
        return self.get(key)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Make ``keys`` ready for lookups; a shared cache pulls them in parallel here."""

    def put(self, key: str, entry: CacheEntry, *, durable: bool = True) -> None:
        """Store ``key``'s result; ``durable=False`` for one that can be fetched again (a
        damaged entry reads as unreadable, and is then fetched again)."""
        if not self.writable:
            return
        self.ensure()
        self._empty = False
        entry = {"format": CACHE_VERSION, "key": key, **entry}
        # compact: json's C encoder only runs without indent, and machines read these
        data = json.dumps(entry, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
        try:
            digest = atomic_write_bytes(self.result_file(key), data, durable=durable)
            self._entry_digests[key] = bytes.fromhex(digest)
        except OSError as exc:
            raise CacheError(f"cannot write cache entry: {exc.strerror or exc}") from exc

    def forget(self, key: str) -> None:
        self.result_path(key).unlink(missing_ok=True)

    def discard(self, key: str) -> None:
        """Drop a damaged entry and those of its objects that fail their digest (only
        objects the entry names by a well-formed sha256: never a path it makes up)."""
        try:
            entry = json.loads(self.result_path(key).read_bytes())
            artifacts = entry.get("artifacts", []) if isinstance(entry, dict) else []
        except (OSError, ValueError):
            artifacts = []
        for artifact in artifacts if isinstance(artifacts, list) else []:
            sha = artifact.get("sha256") if isinstance(artifact, dict) else None
            if is_sha256(sha) and not self.verify_object(sha):
                self.object_path(sha).unlink(missing_ok=True)
        self.forget(key)

    # --- task journal --------------------------------------------------------------------
    def task_path(self, key: str) -> Path:
        return self.root / "tasks" / f"{key}.json"

    def read_task(self, key: str) -> TaskRecord | None:
        """``key``'s journal, when there is a usable one (see `records.TaskRecord`)."""
        try:
            data = json.loads(self.task_path(key).read_bytes())
        except (OSError, ValueError):
            return None
        return TaskRecord.parse(data)

    def write_task(self, key: str, task: TaskRecord) -> None:
        self.ensure()
        atomic_write_bytes(self.task_path(key), canonical_json(task.to_json()).encode())

    def drop_task(self, key: str) -> None:
        self.task_path(key).unlink(missing_ok=True)

    # --- locks ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str, *, timeout: float = 600.0,
             on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the per-key lock, so two processes never compute one key at once.

        A lock file per key, as pre-commit's file lock: `fcntl.flock` on POSIX (released
        by the kernel when a killed run's file closes), `msvcrt.locking` on Windows,
        removed on release. (One byte per key of a shared file, Linux's open file
        description locks, was ten times quicker per lock but saves 0.01 % of a 0.5 s
        call: `benchmarks/locks.py`.) When another run holds it, ``on_wait`` hears "waiting for
        another flow run (KEY…)" once, then this waits up to ``timeout`` seconds.

        Raises:
            CacheError: the lock was still held when ``timeout`` ran out.
        """
        if not self.writable:
            yield
            return
        self.ensure()
        deadline = time.monotonic() + max(0.0, timeout)
        waiting = _Waiting(key, deadline, timeout, on_wait, self.cancel)
        path = self.root / "locks" / f"{key}.lock"
        while True:
            handle = open(path, "a+b")
            try:
                while not _try_lock(handle):
                    waiting.wait()
                # its holder removes the file on release: the file locked must still be
                # the one at the path, else another run may hold a new one there
                if _same_inode(handle, path):
                    break
                _unlock(handle)
            except BaseException:
                handle.close()
                raise
            handle.close()
        try:
            yield
        finally:
            # removed while held (a lock file per key would pile up: one per call ever
            # made); where the platform cannot remove an open file, the sweep does later
            with contextlib.suppress(OSError):
                path.unlink()
            _unlock(handle)
            handle.close()

    def sweep(self, *, older_than: float = 3600.0) -> int:
        """Remove lock files and partial files nobody touched for ``older_than`` seconds.

        A lock file is removed only while the sweep itself holds it: a run can hold a key's
        lock for longer than ``older_than`` (a task polled for an hour), and removing its
        file would let a second run lock a new one and pay for the same key. Returns how
        many files were removed.
        """
        removed = 0
        now = time.time()
        for sub in ("locks", "tmp"):
            folder = self.root / sub
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime <= older_than:
                        continue
                    if sub == "tmp":
                        path.unlink()
                        removed += 1
                    elif _remove_unheld_lock(path):
                        removed += 1
        return removed

    # --- inspection ----------------------------------------------------------------------
    def iter_results(self) -> Iterator[tuple[str, Path]]:
        base = self.root / "results"
        if not base.is_dir():
            return
        for folder in sorted(base.iterdir()):
            for path in sorted(folder.glob("*.json")):
                yield path.stem, path

    def clear(self) -> int:
        """Remove everything; return the number of result entries removed."""
        count = sum(1 for _ in self.iter_results())
        for sub in ("objects", "results", "tasks", "locks", "tmp", "runs", "parsed"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        return count


class _Waiting:
    """Waiting for a lock another run holds: said once, bounded by the deadline."""

    def __init__(self, key: str, deadline: float, timeout: float,
                 on_wait: Callable[[str], None] | None, cancel: Cancellation) -> None:
        self.key, self.deadline, self.timeout, self.on_wait = key, deadline, timeout, on_wait
        self.cancel = cancel
        self.said = False

    def wait(self) -> None:
        """Raises:
            CacheError: the deadline passed.
            Cancelled: the run was cancelled.
        """
        if self.on_wait is not None and not self.said:
            self.on_wait(f"waiting for another flow run ({self.key[:12]}…)")
            self.said = True
        if time.monotonic() >= self.deadline:
            raise CacheError(f"another flow run held the lock of {self.key[:12]}… for "
                             f"{self.timeout:.0f} s", hint="wait for the other run to "
                             "finish, or raise the step's `timeout`")
        self.cancel.sleep(0.05, f"waiting for the lock of {self.key[:12]}…")


def _same_inode(handle: BinaryIO, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def _try_lock(handle: BinaryIO, *, touch: bool = True) -> bool:
    """Take an exclusive lock on an open file without waiting (False: another holds it);
    touch it when taken.

    Raises:
        CacheError: the file system cannot lock files (some network or FUSE mounts).
    """
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if sys.platform == "win32" or exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN,
                                                    errno.EACCES):
            return False
        raise CacheError(f"cannot lock {handle.name}: {exc.strerror or exc}: the cache's "
                         "file system does not support file locks",
                         hint="put the cache on a local disk (--cache-dir or "
                              "FLOW_CACHE_DIR)") from None
    if touch:
        with contextlib.suppress(OSError):
            os.utime(handle.fileno())  # the sweep leaves recently used lock files alone
    return True


def _remove_unheld_lock(path: Path) -> bool:
    """Remove a key's lock file if no run holds it, holding it while it goes (a run that
    takes it meanwhile finds the file gone, by its inode, and makes a new one)."""
    with open(path, "a+b") as handle:
        try:
            if not _try_lock(handle, touch=False):
                return False  # held: a run is still computing that key
        except CacheError:
            return False
        try:
            if not _same_inode(handle, path):
                return False
            path.unlink()
            return True
        finally:
            _unlock(handle)


def _unlock(handle: BinaryIO) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
