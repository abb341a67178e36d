"""Claims in a shared store: of several machines taking over an expired claim at once,
exactly one wins, on SeaweedFS (S3 `If-Match`) and on a shared folder; a claim that
cannot be read is held while it is younger than a lease; a machine whose claim was taken
over does not clobber it (issue 24, defect 7)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowrunner.errors import CacheError
from flowrunner.store.objectstore import DiskStore, S3Store, Store
from flowrunner.store.remote import RemoteCache

TAKERS = 6
ROUNDS = 6


def _disk(tmp_path: Path) -> Callable[[], Store]:
    folder = tmp_path / "shared"
    folder.mkdir()
    return lambda: DiskStore(folder.as_uri(), folder)


def _s3(seaweed: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Store]:
    for name, value in seaweed.env.items():
        monkeypatch.setenv(name, value)
    prefix = uuid.uuid4().hex[:10]
    return lambda: S3Store(f"s3://flowtest/{prefix}", "flowtest", prefix, connections=8)


@pytest.fixture(params=["folder", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Callable[[], Store]:
    if request.param == "folder":
        return _disk(tmp_path)
    return _s3(request.getfixturevalue("seaweed"), monkeypatch)


def _machine(tmp_path: Path, store: Store, number: int) -> RemoteCache:
    return RemoteCache(tmp_path / f"machine{number}", store)


def _take(machine: RemoteCache, key: str, barrier: threading.Barrier,
          won: list[bool]) -> None:
    barrier.wait()
    try:
        won.append(machine._claim(key, time.monotonic() + 0.3, None))
    except CacheError:
        won.append(False)  # waited out the winner's claim


@pytest.mark.slow
def test_of_many_machines_taking_over_an_expired_claim_one_wins(
        tmp_path: Path, stores: Callable[[], Store]) -> None:
    for round_ in range(ROUNDS):
        key = f"{round_:02x}" * 32
        stores().put(f"claims/{key}.json", json.dumps(
            {"owner": "a machine that died", "expires": time.time() - 5}).encode())
        machines = [_machine(tmp_path, stores(), n) for n in range(TAKERS)]
        barrier = threading.Barrier(TAKERS)
        won: list[bool] = []

        threads = [threading.Thread(target=_take, args=(m, key, barrier, won))
                   for m in machines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(won) == [False] * (TAKERS - 1) + [True], f"round {round_}: {won}"
        holder = json.loads(stores().get(f"claims/{key}.json") or b"{}")
        assert holder["owner"] in {m._owner for m in machines}
        for machine in machines:
            machine.close()
        assert stores().get(f"claims/{key}.json") is None  # released by its holder


@pytest.mark.slow
def test_an_unreadable_claim_is_held_until_it_is_older_than_a_lease(
        tmp_path: Path, stores: Callable[[], Store]) -> None:
    key = "cd" * 32
    store = stores()
    store.put(f"claims/{key}.json", b"")  # being written, or damaged
    machine = _machine(tmp_path, store, 1)
    machine.lease = 60.0
    with pytest.raises(CacheError, match="held the claim"):
        machine._claim(key, time.monotonic() + 0.5, None)
    machine.lease = 0.5  # the same claim, now older than a lease
    time.sleep(1.1)
    assert machine._claim(key, time.monotonic() + 5, None) is True
    machine.close()


@pytest.mark.slow
def test_a_machine_whose_claim_was_taken_over_does_not_clobber_it(
        tmp_path: Path, stores: Callable[[], Store]) -> None:
    key = "ef" * 32
    slow = _machine(tmp_path, stores(), 1)
    slow.lease = 1.0
    warned: list[str] = []
    slow.warn = warned.append
    assert slow._claim(key, time.monotonic() + 5, None) is True
    slow._closed.set()  # it stops renewing (a paused machine)
    time.sleep(1.2)
    other = _machine(tmp_path, stores(), 2)
    assert other._claim(key, time.monotonic() + 5, None) is True  # ran out: taken over
    slow._closed.clear()
    slow._renewer = None
    slow._hold(key, slow._held[key])  # it wakes up and renews with its old version
    time.sleep(slow.lease / 3 + 0.5)
    assert "another machine took over the claim" in " ".join(warned)
    slow.close()  # releases nothing of the other's
    holder = json.loads(stores().get(f"claims/{key}.json") or b"{}")
    assert holder["owner"] == other._owner
    other.close()


def test_a_claim_in_a_folder_is_never_seen_half_written(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    store = DiskStore(folder.as_uri(), folder)
    seen: list[bytes] = []
    stop = threading.Event()
    target = folder / "claims" / "k.json"

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(target.read_bytes())
            except OSError:
                pass

    thread = threading.Thread(target=reader)
    thread.start()
    body = b'{"owner": "m", "expires": 1e12}' * 2000
    for _ in range(50):
        assert store.create("claims/k.json", body) is not None
        os.unlink(target)
    stop.set()
    thread.join()
    assert all(data == body for data in seen)


def test_a_link_planted_in_a_shared_folder_is_refused_not_spun_on(tmp_path: Path) -> None:
    store = _disk(tmp_path)()
    key = "12" * 32
    claims = tmp_path / "shared" / "claims"
    claims.mkdir()
    (claims / f"{key}.json").symlink_to("/nonexistent")  # create: "there"; read: "not"
    (tmp_path / "shared" / "objects").symlink_to(tmp_path)  # leads out of the store
    machine = _machine(tmp_path, store, 1)
    warned: list[str] = []
    machine.warn = warned.append
    started = time.monotonic()
    assert machine._claim(key, time.monotonic() + 30, None) is False
    assert time.monotonic() - started < 5  # refused at once, not a loop until the deadline
    assert "leads out of it" in " ".join(warned)
    from flowrunner.store.objectstore import StoreError

    local = tmp_path / "object.bin"
    local.write_bytes(b"bytes")
    with pytest.raises(StoreError, match="leads out of it"):
        store.put_file(f"objects/{key}", str(local))
    assert not (tmp_path / key).exists()  # nothing written through the link


@pytest.mark.slow
def test_a_stale_compare_and_replace_lock_is_broken(tmp_path: Path) -> None:
    store = _disk(tmp_path)()
    version = store.create("claims/k.json", b"one")
    assert version is not None
    lock = tmp_path / "shared" / "claims" / "k.json.lock"
    lock.write_bytes(b"")
    assert store.replace("claims/k.json", b"two", version) is None  # held: not now
    old = time.time() - 3600
    os.utime(lock, (old, old))  # its process died an hour ago
    assert store.replace("claims/k.json", b"two", version) is not None
    assert not lock.exists()
    assert not [p for p in lock.parent.iterdir() if ".stale-" in p.name]


def test_a_conditional_write_that_meets_another_is_a_lost_race_not_a_dead_store(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 answers 409 ConditionalRequestConflict to one of two conditional writes that
    meet: that machine lost the race; the store is fine."""
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    store = S3Store("s3://bucket/p", "bucket", "p", connections=2)
    client = boto3.session.Session().client("s3", region_name="us-east-1",
                                            endpoint_url="http://127.0.0.1:9")
    stubber = Stubber(client)
    for _ in range(2):
        stubber.add_client_error("put_object", service_error_code="ConditionalRequestConflict",
                                 http_status_code=409)
    stubber.activate()
    store._client = client
    assert store.replace("claims/k.json", b"x", '"etag"') is None
    assert store.create("claims/k.json", b"x") is None
