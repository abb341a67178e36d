"""Per-key cache locks, decided for issue 26: the cache's lock file per key (portable,
`Cache.lock`) against one byte per key of a shared file (Linux's open file description
locks, the way flowrunner used until this benchmark retired it; kept here to compare).

The lock is taken once per call actually made (a cache miss), around the call, so what
matters is its cost beside a provider's answer. This measures taking and releasing a lock
on fresh keys, from 1 and from 16 threads, and prints the cost as a share of a 0.5 s call
(the emulator's latency in the throughput benchmark; real providers take seconds).

    python benchmarks/locks.py                 # 4,000 keys per way, 3 rounds
    python benchmarks/locks.py --keys 20000
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import os
import platform
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from flowrunner.store.cache import Cache

_FLOCK = "hh4xqqi4x"  # l_type, l_whence, l_start, l_len, l_pid (0: required for OFD)


class RangeLocks:
    """One byte per key of `keys.lock`, locked with F_OFD_SETLK (the retired way)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = str(folder / "keys.lock")
        self.free: list[int] = []
        self.guard = threading.Lock()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        import fcntl

        with self.guard:
            fd = self.free.pop() if self.free else os.open(self.path, os.O_RDWR | os.O_CREAT)
        offset = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=7).digest(), "big")
        while True:
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                            struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                time.sleep(0.001)
        try:
            yield
        finally:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                        struct.pack(_FLOCK, fcntl.F_UNLCK, os.SEEK_SET, offset, 1, 0))
            with self.guard:
                self.free.append(fd)


def _per_lock(lock: Callable[[str], contextlib.AbstractContextManager[None]], keys: int,
              threads: int) -> float:
    """Seconds per lock taken and released, ``keys`` fresh keys over ``threads``."""
    names = [os.urandom(32).hex() for _ in range(keys)]
    chunks = [names[i::threads] for i in range(threads)]

    def work(chunk: list[str]) -> None:
        for key in chunk:
            with lock(key):
                pass

    workers = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - started) / keys


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    linux = sys.platform == "linux" and struct.calcsize("P") == 8
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()}")
    with tempfile.TemporaryDirectory() as scratch:
        print(f"file system under {scratch}: {_fs(Path(scratch))}")
        print("\n| threads | lock file per key µs | byte ranges µs | lock file per key as a "
              "share of a 0.5 s call |")
        print("|---:|---:|---:|---:|")
        for threads in (1, 16):
            files, ranges = [], []
            for number in range(args.rounds):  # alternating, so drift hits both alike
                cache = Cache(Path(scratch) / f"cache-{threads}-{number}")
                files.append(_per_lock(cache.lock, args.keys, threads))
                if linux:
                    shared = RangeLocks(Path(scratch) / f"ranges-{threads}-{number}")
                    ranges.append(_per_lock(shared.lock, args.keys, threads))
            file_us = statistics.median(files) * 1e6
            range_us = statistics.median(ranges) * 1e6 if ranges else float("nan")
            print(f"| {threads} | {file_us:.1f} | {range_us:.1f} | "
                  f"{file_us / 5e5 * 100:.4f} % |")


def _fs(folder: Path) -> str:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best = ("", "unknown")
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and str(folder).startswith(parts[1]) and len(parts[1]) > len(best[0]):
            best = (parts[1], parts[2])
    return best[1]


if __name__ == "__main__":
    main()
