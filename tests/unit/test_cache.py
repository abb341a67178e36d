from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowrunner.errors import CacheError
from flowrunner.net.providers import normalise_base_url
from flowrunner.store.cache import Cache, copy_atomic
from flowrunner.store.cache_key import cache_key

MATERIAL = {"v": 1, "provider": "https://api.elkapi.com", "endpoint": "recraft.vectorize",
            "method": "POST", "path": "/recraft/v1/images/vectorize",
            "params": {"image": {"sha256": "ab" * 32}}}


def test_same_material_same_key_and_any_change_a_new_key() -> None:
    assert cache_key(MATERIAL) == cache_key(json.loads(json.dumps(MATERIAL)))
    for field, value in [("provider", "http://127.0.0.1:1"), ("endpoint", "x"),
                         ("method", "PUT"), ("path", "/y"), ("v", 2),
                         ("params", {"image": {"sha256": "cd" * 32}})]:
        assert cache_key({**MATERIAL, field: value}) != cache_key(MATERIAL)


def test_key_ignores_dict_order() -> None:
    reordered = dict(reversed(list(MATERIAL.items())))
    assert cache_key(reordered) == cache_key(MATERIAL)


@pytest.mark.parametrize(("url", "identity"), [
    ("https://API.elkapi.com/", "https://api.elkapi.com"),
    ("https://api.elkapi.com:443", "https://api.elkapi.com"),
    ("http://127.0.0.1:8787/v1/", "http://127.0.0.1:8787/v1"),
])
def test_provider_identity_is_normalised(url: str, identity: str) -> None:
    assert normalise_base_url(url) == identity


def test_put_get_roundtrip_and_readme(tmp_path: Path) -> None:
    cache = Cache(tmp_path / ".flow" / "cache")
    cache.put("k" * 64, {"endpoint": "e", "artifacts": []})
    entry = cache.get("k" * 64)
    assert entry is not None and entry["endpoint"] == "e"
    assert "safe to delete" in (tmp_path / ".flow" / "cache" / "README").read_text()
    assert (tmp_path / ".flow" / ".gitignore").read_text().endswith("*\n")


def test_entry_with_a_missing_object_counts_as_missing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put("a" * 64, {"artifacts": [{"sha256": "f" * 64, "bytes": 3}]})
    assert cache.get("a" * 64) is None


def test_interrupted_write_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(tmp_path)
    cache.ensure()

    def explode(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(KeyboardInterrupt):
        cache.put("b" * 64, {"artifacts": []})
    monkeypatch.undo()
    assert cache.get("b" * 64) is None
    assert not list((tmp_path / "results").rglob("*"))  or \
        all(p.is_dir() for p in (tmp_path / "results").rglob("*"))


def test_corrupt_object_is_detected_on_copy(tmp_path: Path) -> None:
    source = tmp_path / "obj"
    source.write_bytes(b"not what was stored")
    with pytest.raises(CacheError) as info:
        copy_atomic(source, tmp_path / "out" / "x.png", expect_sha256="0" * 64)
    assert "corrupt" in info.value.message
    assert info.value.hint and "flow cache clear" in info.value.hint
    assert not (tmp_path / "out" / "x.png").exists()
    assert not list((tmp_path / "out").iterdir())


def test_corrupt_result_json_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put("c" * 64, {"artifacts": []})
    cache.result_path("c" * 64).write_text("{broken")
    assert cache.get("c" * 64) is None


def test_a_held_key_lock_says_why_it_waits_and_gives_up_at_the_timeout(tmp_path: Path) -> None:
    import threading

    cache = Cache(tmp_path / "cache")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with cache.lock("k" * 64):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    heard: list[str] = []
    with pytest.raises(CacheError) as info:
        with cache.lock("k" * 64, timeout=0.3, on_wait=heard.append):
            pass
    assert heard == [f"waiting for another flow run ({'k' * 12}…)"]
    assert "held the lock" in info.value.message
    release.set()
    thread.join()
    with cache.lock("k" * 64, timeout=1, on_wait=heard.append):  # free again: no wait
        pass
    assert len(heard) == 1


def test_sweep_removes_only_old_lock_and_partial_files(tmp_path: Path) -> None:
    import os
    import time

    cache = Cache(tmp_path / "cache")
    cache.ensure()
    old_lock = cache.root / "locks" / "old.lock"
    new_lock = cache.root / "locks" / "new.lock"
    old_part = cache.root / "tmp" / "part-old"
    for path in (old_lock, new_lock, old_part):
        path.write_bytes(b"")
    long_ago = time.time() - 7200
    os.utime(old_lock, (long_ago, long_ago))
    os.utime(old_part, (long_ago, long_ago))
    assert cache.sweep() == 2
    assert new_lock.exists() and not old_lock.exists() and not old_part.exists()


def test_sweep_leaves_a_lock_a_long_call_still_holds(tmp_path: Path) -> None:
    """A task polled for over an hour keeps its key's lock: the sweep must not remove the
    file, or a second run would lock a new one and pay for the same key again."""
    import os
    import threading
    import time

    cache = Cache(tmp_path / "cache")
    key = "k" * 64
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with cache.lock(key):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    lock_file = cache.root / "locks" / f"{key}.lock"
    long_ago = time.time() - 7200
    os.utime(lock_file, (long_ago, long_ago))
    assert cache.sweep() == 0 and lock_file.exists()
    with pytest.raises(CacheError, match="held the lock"):
        with cache.lock(key, timeout=0.3):
            pass
    release.set()
    thread.join()


def test_a_file_system_without_locks_is_said_at_once(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """flock failing for another reason than "held" (ENOLCK on some network mounts) is an
    error naming the cause, not a 600 s wait for a holder that does not exist. (The OS
    call is replaced: no file system without locks can be mounted here.)"""
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(CacheError, match="does not support file locks") as info:
        with cache.lock("k" * 64, timeout=5):
            pass
    assert "--cache-dir" in (info.value.hint or "")


def test_key_locks_leave_no_file_behind_and_stay_exclusive(tmp_path: Path) -> None:
    import threading
    import time

    cache = Cache(tmp_path / "cache")
    inside = 0
    most = 0
    guard = threading.Lock()

    def take() -> None:
        nonlocal inside, most
        for _ in range(30):
            with cache.lock("k" * 64, timeout=30):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1  # never two holders, though each release removes the file
    # each key's file is removed on release: none piles up
    assert list((tmp_path / "cache" / "locks").iterdir()) == []


def test_a_download_replaces_a_damaged_object_of_the_same_size_and_is_copied_whole(
        tmp_path: Path) -> None:
    """An object already in the cache under the download's digest but with other bytes
    (damaged on disk, same size) is replaced, not kept: the entry names good bytes, and
    the saved file a fresh call copies (without hashing again) is those bytes."""
    import hashlib

    from flowrunner.store.cache import place_file, write_all

    cache = Cache(tmp_path / "cache")
    good = bytes(range(256)) * 4096  # 1 MB: more than one block of any copy loop
    sha = hashlib.sha256(good).hexdigest()
    cache.object_path(sha).parent.mkdir(parents=True)
    cache.object_path(sha).write_bytes(b"\0" * len(good))
    handle, temp = cache.temp_file()
    with handle:
        write_all(handle, good)
        cache.adopt_object(temp, sha, handle)
    assert cache.object_path(sha).read_bytes() == good
    assert not temp.exists()
    place_file(cache.object_file(sha), tmp_path / "out" / "a.bin", sha256=sha, checked=True)
    assert (tmp_path / "out" / "a.bin").read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin"]  # no temp left


@pytest.mark.parametrize("kernel_copy", ["works", "refused", "stops"])
def test_a_checked_object_is_copied_whole_by_the_kernel_or_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: str) -> None:
    """`copy_file_range` copies a fresh call's file; where the kernel or the file system
    refuses it (an old kernel: ENOSYS; across file systems: EXDEV), the bytes go through
    Python instead, from the start (also after the kernel copied part of it)."""
    import errno
    import hashlib
    import os

    from flowrunner.store.cache import place_file

    data = os.urandom(3 << 20)  # more than one block of the fallback's loop
    source = tmp_path / "object"
    source.write_bytes(data)
    calls = []

    def refuse(src: int, dst: int, count: int) -> int:
        calls.append(count)
        if kernel_copy == "stops" and len(calls) == 1:
            return os.write(dst, os.read(src, 1000))  # a part, then a refusal
        raise OSError(errno.EXDEV if kernel_copy == "stops" else errno.ENOSYS, "refused")

    if kernel_copy != "works":
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    place_file(str(source), tmp_path / "kit" / "a.bin",
               sha256=hashlib.sha256(data).hexdigest(), checked=True)
    assert (tmp_path / "kit" / "a.bin").read_bytes() == data
    assert [p.name for p in (tmp_path / "kit").iterdir()] == ["a.bin"]


def test_threads_making_their_first_file_in_a_new_folder_never_fail(tmp_path: Path) -> None:
    """Defect 1 of issue 24: a thread whose open found the folder missing, then saw it
    made by another thread, used to give up ("No such file or directory")."""
    import threading

    from flowrunner.store.cache import atomic_write_bytes

    threads, rounds = 8, 200
    failures: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def writer(number: int) -> None:
        for round_ in range(rounds):
            barrier.wait()
            try:
                atomic_write_bytes(tmp_path / f"r{round_}" / "a" / f"{number}", b"x",
                                   durable=False)
            except BaseException as exc:  # noqa: BLE001 - counted, then asserted
                failures.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    assert sum(1 for _ in tmp_path.rglob("*") if _.is_file()) == threads * rounds
