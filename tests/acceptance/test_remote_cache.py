"""The shared cache against a real object store: SeaweedFS on loopback, speaking S3
(conditional writes included), with `flow` run as users run it and the emulator counting
every call."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import BANNERS, KEY_ENV, LOGO_CHAIN, recipe

from conftest import CANARY_KEY, Emulator, flow
from seaweed import Seaweed, running_seaweed, why_not_runnable

SIZES = "[1024x1024, 2048x1024, 1820x1024, 1365x1024, 1024x1365, 1536x1024]"
BUCKET = "flowtest"


@pytest.fixture
def remote(seaweed: Seaweed) -> tuple[str, dict[str, str]]:
    """A fresh prefix in the bucket, and the environment a user would set for it."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}", dict(seaweed.env, **KEY_ENV)


def _keys(seaweed: Seaweed, url: str) -> dict[str, bytes]:
    prefix = url.split("/", 3)[3] + "/"
    client = seaweed.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix):]] = client.get_object(
                Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return found


def _put(seaweed: Seaweed, url: str, name: str, data: bytes) -> None:
    seaweed.client().put_object(Bucket=BUCKET, Key=url.split("/", 3)[3] + "/" + name, Body=data)


def _clone(source: Path, target: Path) -> Path:
    """A fresh clone: the recipe (and lock file) only, no cache, no assets."""
    target.mkdir()
    for name in ("brand.yaml", "brand.lock"):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    return target / "brand.yaml"


def _api_calls(emulator: Any) -> list[str]:
    return [r["path"] for r in emulator.requests() if not r["path"].startswith("/files")]


def test_a_second_clone_takes_every_result_from_the_bucket(tmp_path: Path, emulator: Emulator,
                                                           remote, seaweed) -> None:
    url, env = remote
    (tmp_path / "a").mkdir()
    first = recipe(tmp_path / "a", emulator.base_url, LOGO_CHAIN + BANNERS)
    made = flow("run", first, "--remote-cache", url, env=env)
    assert made.code == 0, made
    assert "remote cache s3://" in made.out and "5 uploads" in made.out
    stored = _keys(seaweed, url)
    entries = [name for name in stored if name.startswith("results/")]
    assert len(entries) == 5
    for name in entries:  # objects by the sha256 of their bytes, named by the entry
        entry = json.loads(stored[name])
        for artifact in entry["artifacts"]:
            data = stored[f"objects/{artifact['sha256']}"]
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
    assert not [name for name in stored if name.startswith(("claims/", "tasks/"))]
    calls = len(_api_calls(emulator))
    emulator.reset()

    second = _clone(first.parent, tmp_path / "b")
    shared = flow("run", second, "--remote-cache", url, env=env)
    assert shared.code == 0, shared
    assert _api_calls(emulator) == []  # no request at all: every result came from the bucket
    assert "5 hits" in shared.out
    for asset in (first.parent / "assets").glob("*.*"):
        if asset.suffix != ".html":
            assert (second.parent / "assets" / asset.name).read_bytes() == asset.read_bytes()
    assert (second.parent / "brand.lock").read_text() == (first.parent / "brand.lock").read_text()
    assert calls >= 5

    # a CI job: a clone with an empty local cache, --frozen, FLOW_REMOTE_CACHE
    third = _clone(first.parent, tmp_path / "c")
    frozen = flow("run", third, "--frozen", "--json", env=dict(env, FLOW_REMOTE_CACHE=url))
    assert frozen.code == 0, frozen
    assert _api_calls(emulator) == []
    finished = [json.loads(line) for line in frozen.out.splitlines()
                if '"run_finished"' in line][0]
    assert finished["remote"]["hits"] == 5 and finished["remote"]["uploads"] == 0
    assert finished["remote"]["url"] == url and finished["cached"] == 5
    assert (third.parent / "assets" / "logo.svg").read_bytes() == \
        (first.parent / "assets" / "logo.svg").read_bytes()


def test_a_shared_folder_works_like_a_bucket(tmp_path: Path, emulator: Emulator) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (tmp_path / "a").mkdir()
    first = recipe(tmp_path / "a", emulator.base_url, BANNERS)
    assert flow("run", first, "--remote-cache", shared.as_uri(), env=KEY_ENV).code == 0
    emulator.reset()
    second = _clone(first.parent, tmp_path / "b")
    result = flow("run", second, "--remote-cache", shared.as_uri(), env=KEY_ENV)
    assert result.code == 0, result
    assert _api_calls(emulator) == []
    assert "2 hits" in result.out


@pytest.mark.slow
def test_three_shards_started_together_make_each_call_once(
        tmp_path: Path, emulator: Emulator, remote, seaweed) -> None:
    url, env = remote
    emulator.state.latency = 0.3
    (tmp_path / "single").mkdir()
    single = recipe(tmp_path / "single", emulator.base_url, LOGO_CHAIN + BANNERS, sizes=SIZES)
    shards = []
    for index in (1, 2, 3):
        folder = tmp_path / f"shard{index}"
        path = _clone(single.parent, folder)
        shards.append((folder, subprocess.Popen(
            [sys.executable, "-m", "flowrunner", "run", str(path), "--remote-cache", url,
             "--shard", f"{index}/3"], env=dict(os.environ, **env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)))
    for folder, process in shards:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, (out, err)
        assert "Traceback" not in err
        # a shard writes no lock file, no gallery and no assets: the gather run does
        assert not (folder / "brand.lock").exists() and not (folder / "assets").exists()
    calls = _api_calls(emulator)
    bodies = [json.dumps(r.get("json") or r.get("files"), sort_keys=True)
              for r in emulator.requests() if not r["path"].startswith("/files")]
    assert len(bodies) == len(set(bodies)) == 9, calls  # every call made exactly once
    assert not [n for n in _keys(seaweed, url) if n.startswith("claims/")]
    emulator.state.latency = 0
    emulator.reset()

    gather = _clone(single.parent, tmp_path / "gather")
    gathered = flow("run", gather, "--frozen", "--remote-cache", url, env=env)
    assert gathered.code == 0, gathered
    assert _api_calls(emulator) == []
    assert (gather.parent / "assets" / "index.html").exists()
    alone = flow("run", single, env=KEY_ENV)  # the same recipe on one machine, no remote
    assert alone.code == 0, alone
    assert (gather.parent / "brand.lock").read_text() == (single.parent / "brand.lock").read_text()


@pytest.mark.slow
def test_two_machines_started_together_pay_for_each_call_once(tmp_path: Path, emulator: Emulator,
                                                             remote, seaweed) -> None:
    url, env = remote
    emulator.state.latency = 0.5
    (tmp_path / "a").mkdir()
    first = recipe(tmp_path / "a", emulator.base_url, BANNERS, sizes=SIZES)
    second = _clone(first.parent, tmp_path / "b")
    runs = [subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path),
                              "--remote-cache", url], env=dict(os.environ, **env),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for path in (first, second)]
    outs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outs
    assert len(_api_calls(emulator)) == 6
    assert "waiting for another machine's call" in "".join(out for out, _ in outs)
    assert (first.parent / "brand.lock").read_text() == (second.parent / "brand.lock").read_text()


def test_a_claim_whose_machine_died_is_taken_over(tmp_path: Path, emulator: Emulator, remote,
                                                  seaweed) -> None:
    url, env = remote
    (tmp_path / "a").mkdir()
    path = recipe(tmp_path / "a", emulator.base_url, BANNERS, sizes="[1024x1024]")
    plan = flow("plan", path, "--json", env=env)
    key = json.loads(plan.out)["instances"][0]["key"]
    _put(seaweed, url, f"claims/{key}.json",
         json.dumps({"owner": "dead-runner", "expires": time.time() - 1}).encode())
    result = flow("run", path, "--remote-cache", url, env=env)
    assert result.code == 0, result
    assert len(_api_calls(emulator)) == 1
    assert f"claims/{key}.json" not in _keys(seaweed, url)


@pytest.mark.slow
def test_a_task_interrupted_on_one_machine_is_resumed_on_another(tmp_path: Path, emulator: Emulator,
                                                                remote, seaweed) -> None:
    url, env = remote
    env = dict(env, FLOW_REMOTE_LEASE="2")
    emulator.state.latency = 0.3
    (tmp_path / "a").mkdir()
    path = recipe(tmp_path / "a", emulator.base_url, """
  hero:
    uses: flux.generate
    with: {model: flux-pro-1.1, prompt: "A fox", width: 512, height: 512}
    save: hero.png
""")
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path),
                            "--remote-cache", url], env=dict(os.environ, **env),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            r["path"] == "/flux/v1/get_result" for r in emulator.requests()):
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)  # the machine dies: its claim is left to run out
    run.wait()
    assert [n for n in _keys(seaweed, url) if n.startswith("tasks/")]
    emulator.state.latency = 0
    other = _clone(path.parent, tmp_path / "b")
    result = flow("run", other, "--remote-cache", url, env=env)
    assert result.code == 0, result
    assert "resumed task" in result.out
    submits = [r for r in emulator.requests() if r["path"] == "/flux/v1/flux-pro-1.1"]
    assert len(submits) == 1  # polled from the second machine, never submitted again
    assert not [n for n in _keys(seaweed, url) if n.startswith(("tasks/", "claims/"))]


def _filled(tmp_path: Path, emulator: Any, url: str, env: dict[str, str]) -> Path:
    (tmp_path / "a").mkdir()
    path = recipe(tmp_path / "a", emulator.base_url, BANNERS)
    assert flow("run", path, "--remote-cache", url, env=env).code == 0
    emulator.reset()
    return path


@pytest.mark.slow
def test_a_tampered_or_unsigned_entry_is_never_used(tmp_path: Path, emulator: Emulator, remote,
                                                    seaweed) -> None:
    url, env = remote
    signed = dict(env, FLOW_CACHE_SECRET="team-secret-3f9a")
    path = _filled(tmp_path, emulator, url, signed)
    stored = _keys(seaweed, url)
    name = sorted(n for n in stored if n.startswith("results/"))[0]
    entry = json.loads(stored[name])
    assert entry["signature"].startswith("hmac-sha256:")
    entry["outputs"] = {"url": "https://evil.example/x.png"}  # the signature left as it was
    _put(seaweed, url, name, json.dumps(entry).encode())

    result = flow("run", _clone(path.parent, tmp_path / "b"), "--remote-cache", url,
                  env=signed)
    assert result.code == 0, result
    assert len([line for line in result.out.splitlines()
                if "signature" in line and "warning" in line]) == 1
    assert len(_api_calls(emulator)) == 1  # the tampered instance is called again
    assert "evil.example" not in (tmp_path / "b" / "brand.lock").read_text()

    # with the secret set, an entry written without it is not trusted either
    emulator.reset()
    unsigned_url = url + "-unsigned"
    (tmp_path / "c").mkdir()
    first = recipe(tmp_path / "c", emulator.base_url, BANNERS)
    assert flow("run", first, "--remote-cache", unsigned_url, env=env).code == 0
    emulator.reset()
    refused = flow("run", _clone(first.parent, tmp_path / "d"), "--remote-cache",
                   unsigned_url, env=signed)
    assert refused.code == 0, refused
    assert "signature" in refused.out
    assert len(_api_calls(emulator)) == 2


def test_a_corrupt_object_in_the_bucket_is_never_used(tmp_path: Path, emulator: Emulator, remote,
                                                      seaweed) -> None:
    url, env = remote
    path = _filled(tmp_path, emulator, url, env)
    stored = _keys(seaweed, url)
    name = sorted(n for n in stored if n.startswith("objects/"))[0]
    _put(seaweed, url, name, stored[name][:-10] + b"0123456789")
    result = flow("run", _clone(path.parent, tmp_path / "b"), "--remote-cache", url, env=env)
    assert result.code == 0, result
    assert len([line for line in result.out.splitlines()
                if "corrupt" in line and "warning" in line]) == 1
    assert len(_api_calls(emulator)) == 1
    for saved in (tmp_path / "b" / "assets").glob("*.png"):
        assert saved.read_bytes() != stored[name][:-10] + b"0123456789"


def test_read_mode_reads_but_writes_nothing(tmp_path: Path, emulator: Emulator, remote,
                                            seaweed) -> None:
    url, env = remote
    path = _filled(tmp_path, emulator, url, env)
    before = _keys(seaweed, url)
    clone = _clone(path.parent, tmp_path / "b")
    clone.write_text(clone.read_text() + LOGO_CHAIN)  # a pull request adds steps
    result = flow("run", clone, "--remote-cache", url, "--remote-cache-mode", "read", env=env)
    assert result.code == 0, result
    assert "2 hits" in result.out and "read-only" in result.out
    assert len(_api_calls(emulator)) >= 3  # the new steps were called
    assert _keys(seaweed, url) == before  # nothing written: no object, entry or claim


def test_an_unreachable_remote_is_a_warning_and_frozen_fails(tmp_path: Path, emulator: Emulator,
                                                            remote) -> None:
    url, env = remote
    env = dict(env, AWS_ENDPOINT_URL="http://127.0.0.1:9")  # nothing listens there
    (tmp_path / "a").mkdir()
    path = recipe(tmp_path / "a", emulator.base_url, BANNERS)
    result = flow("run", path, "--remote-cache", url, env=env)
    assert result.code == 0, result
    assert "warning: remote cache" in result.out and "local cache only" in result.out
    assert "Traceback" not in result.both
    frozen = flow("run", path, "--frozen", "--remote-cache", url, env=env)
    assert frozen.code == 4, frozen
    assert "cannot be used" in frozen.both
    bad = flow("run", path, "--remote-cache", "gs://bucket/x", env=env)
    assert bad.code == 2 and "not a remote cache URL" in bad.both


@pytest.mark.slow
def test_the_store_stopping_mid_run_leaves_a_whole_local_run(tmp_path: Path, emulator: Emulator,
                                                            ) -> None:
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    emulator.state.latency = 0.4
    with running_seaweed(tmp_path / "store") as store:
        (tmp_path / "a").mkdir()
        path = recipe(tmp_path / "a", emulator.base_url, BANNERS + LOGO_CHAIN, sizes=SIZES,
                      extra="concurrency: 2\n")
        run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path),
                                "--remote-cache", f"s3://{BUCKET}/mid"],
                               env=dict(os.environ, **store.env, **KEY_ENV),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_api_calls(emulator)) < 3:
            time.sleep(0.05)
        store.process.kill()  # the store goes away mid-run
        store.process.wait()
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, (out, err)
    assert "warning: remote cache" in out and "Traceback" not in err
    assert len(list((tmp_path / "a" / "assets").glob("*.png"))) == 8
    verify = flow("verify", path)
    assert verify.code == 0, verify


def test_remote_options_are_documented_in_run_help() -> None:
    result = flow("run", "--help")
    for option in ("--remote-cache", "--remote-cache-mode", "--shard", "FLOW_REMOTE_CACHE"):
        assert option in result.out
    assert CANARY_KEY not in result.out


def test_plan_status_and_cache_commands_see_the_remote(tmp_path: Path, emulator: Emulator, remote,
                                                       seaweed) -> None:
    url, env = remote
    path = _filled(tmp_path, emulator, url, env)
    clone = _clone(path.parent, tmp_path / "b")
    planned = flow("plan", clone, "--json", "--remote-cache", url, env=env)
    assert planned.code == 0, planned
    assert {row["state"] for row in json.loads(planned.out)["instances"]} == {"cached"}
    assert flow("status", clone, env=dict(env, FLOW_REMOTE_CACHE=url)).code == 0
    assert _api_calls(emulator) == []

    listed = flow("cache", "ls", "--remote", "--remote-cache", url, "--json", env=env)
    assert listed.code == 0, listed
    rows = json.loads(listed.out)
    assert len(rows) == 2 and {r["endpoint"] for r in rows} == {"recraft.generate_image"}
    # drop one size from the recipe: gc --remote removes its entry and its object only
    clone.write_text(clone.read_text().replace("sizes: [1024x1024, 2048x1024]",
                                               "sizes: [1024x1024]"))
    (clone.parent / "brand.lock").unlink()
    pruned = flow("cache", "gc", clone, "--remote", "--remote-cache", url, env=env)
    assert pruned.code == 0, pruned
    assert "removed 1 entries" in pruned.out
    left = _keys(seaweed, url)
    assert len([n for n in left if n.startswith("results/")]) == 1
    assert len([n for n in left if n.startswith("objects/")]) == 1
    missing = flow("cache", "ls", "--remote", env=env)
    assert missing.code == 2 and "--remote-cache" in missing.both


def test_cache_push_shares_results_made_before_the_remote(
        tmp_path: Path, emulator: Emulator, remote, seaweed) -> None:
    url, env = remote
    (tmp_path / "a").mkdir()
    path = recipe(tmp_path / "a", emulator.base_url, BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0  # no remote yet
    assert not _keys(seaweed, url)
    pushed = flow("cache", "push", path, "--remote-cache", url, env=env)
    assert pushed.code == 0, pushed
    assert "uploaded 2 results" in pushed.out
    again = flow("cache", "push", path, "--remote-cache", url, env=env)
    assert "uploaded 0 results" in again.out and "2 were already there" in again.out
    emulator.reset()
    shared = flow("run", _clone(path.parent, tmp_path / "b"), "--frozen", "--remote-cache",
                  url, env=env)
    assert shared.code == 0, shared
    assert _api_calls(emulator) == []
