"""The shared cache's rules that need no object store: signatures, shards, a shared
folder's exclusive create, and a remote that is not there."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from flowrunner.errors import UsageError
from flowrunner.run.options import Shard
from flowrunner.store.cache import Cache
from flowrunner.store.objectstore import DiskStore, open_store
from flowrunner.store.remote import RemoteCache, sign


def test_a_signature_covers_every_field_but_itself() -> None:
    entry = {"format": 1, "key": "ab" * 32, "outputs": {"url": "u"}, "artifacts": []}
    signature = sign(entry, "secret")
    assert sign({**entry, "signature": signature}, "secret") == signature
    assert sign({**entry, "outputs": {"url": "v"}}, "secret") != signature
    assert sign(entry, "another secret") != signature


def test_shards_split_keys_by_key_and_cover_each_once() -> None:
    keys = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(300)]  # cache keys
    owners = [[Shard(i, 3).owns(key) for i in (1, 2, 3)] for key in keys]
    assert all(sum(row) == 1 for row in owners)
    assert all(any(row[i] for row in owners) for i in range(3))
    assert str(Shard.parse("2/3")) == "2/3"
    for bad in ("0/3", "4/3", "x", "1/0", "-1/2"):
        with pytest.raises(UsageError):
            Shard.parse(bad)


def test_a_shared_folder_creates_a_claim_once(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    assert isinstance(store, DiskStore)
    assert store.create("claims/k.json", b"one")
    assert not store.create("claims/k.json", b"two")
    assert store.get("claims/k.json") == b"one"
    store.delete("claims/k.json")
    assert store.get("claims/k.json") is None
    store.put("results/k.json", b"{}")
    assert list(store.names("results/")) == [("results/k.json", 2)]


@pytest.mark.parametrize("url", ["gs://bucket/x", "s3://", "bucket/prefix", "file://"])
def test_a_url_that_names_no_store_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="not a remote cache URL"):
        open_store(url)


def test_a_missing_shared_folder_is_a_warning_and_the_local_cache_goes_on(
        tmp_path: Path) -> None:
    heard: list[str] = []
    cache = RemoteCache(tmp_path / "cache", open_store((tmp_path / "gone").as_uri()),
                        warn=heard.append)
    assert not cache.check()
    assert len(heard) == 1 and "is not a folder" in heard[0]
    cache.put("ab" * 32, {"artifacts": [], "outputs": {}})
    assert cache.get("ab" * 32) is not None  # the local cache still works
    assert "not used" in cache.summary()


def test_an_entry_naming_another_key_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    store = open_store((tmp_path / "shared").as_uri())
    Cache(tmp_path / "a")  # the writer's local cache is irrelevant here
    store.put("results/" + "cd" * 32 + ".json",
              json.dumps({"format": 1, "key": "ef" * 32, "artifacts": []}).encode())
    heard: list[str] = []
    cache = RemoteCache(tmp_path / "b", store, warn=heard.append)
    assert cache.get("cd" * 32) is None
    assert heard and "names another key" in heard[0]
