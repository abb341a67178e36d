"""After any kind of run (full, --only, --var, a failing step, a budget refusal, an
interruption) the lock file, the gallery page and the files on disk agree, and `flow verify`
passes: a partial run never leaves assets the lock file does not describe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import BANNERS, BROKEN, KEY_ENV, LOGO_CHAIN, kit_disagreements, recipe, sha256

from conftest import Emulator, flow
from flowrunner.kit.lockfile import read_lock


def _agrees(path: Path) -> None:
    assert kit_disagreements(path) == []
    verified = flow("verify", path)
    assert verified.code == 0, verified


def test_partial_runs_keep_lock_gallery_and_files_in_agreement(tmp_path: Path,
                                                               emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    _agrees(path)
    full = read_lock(tmp_path / "brand.lock").instances
    assert len(full) == 5

    # --var and --only: logo.png is replaced together with its entry, the rest stays Acme's
    other = flow("run", path, "--var", "brand=Globex", "--only", "logo", env=KEY_ENV)
    assert other.code == 0, other
    _agrees(path)
    lock = read_lock(tmp_path / "brand.lock").instances
    assert lock["logo"]["params"]["prompt"] == "Logo for Globex"
    assert lock["logo"]["vars"] == {"brand": "Globex"}
    assert lock["svg"] == full["svg"] and lock["banner[size=2048x1024]"] == \
        full["banner[size=2048x1024]"]
    status = flow("status", path)
    assert status.code == 1
    [logo_line] = [ln for ln in status.out.splitlines() if ln.split()[1:2] == ["logo"]]
    assert logo_line.startswith("stale") and "made with --var brand=Globex" in logo_line
    fresh = [ln.split()[1] for ln in status.out.splitlines() if ln.startswith("fresh")]
    assert "svg" in fresh and "banner[size=1024x1024]" in fresh

    # --only one step: the page still shows the whole kit, not just that step
    only = flow("run", path, "--only", "banner", env=KEY_ENV)
    assert only.code == 0, only
    _agrees(path)
    page = (tmp_path / "assets" / "index.html").read_text()
    assert page.count('class="card"') == 5

    # a failing step: what finished is recorded, the rest keeps its earlier entry
    path.write_text(path.read_text().replace("brand: Acme", "brand: Initech") + BROKEN)
    failed = flow("run", path, env=KEY_ENV)
    assert failed.code == 1, failed
    _agrees(path)
    lock = read_lock(tmp_path / "brand.lock").instances
    assert lock["logo"]["params"]["prompt"] == "Logo for Initech" and "vars" not in lock["logo"]
    assert "broken" not in lock

    # a budget too small for the work: nothing is called, nothing on disk changes
    before = {p: sha256(p) for p in (tmp_path / "assets").rglob("*.png")}
    calls = len(emulator.calls())
    path.write_text(path.read_text().replace("brand: Initech", "brand: Umbrella"))
    refused = flow("run", path, "--max-credits", "1", env=KEY_ENV)
    assert refused.code == 1, refused
    assert len(emulator.calls()) == calls
    assert {p: sha256(p) for p in (tmp_path / "assets").rglob("*.png")} == before
    _agrees(path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_records_what_it_replaced(tmp_path: Path, emulator: Emulator,
                                                     sig: int) -> None:
    sizes = ["1024x1024", "2048x1024", "1820x1024", "1024x2048", "1365x1024", "1024x1365",
             "1536x1024", "1024x1536", "1434x1024", "1024x1434"]
    path = recipe(tmp_path, emulator.base_url, BANNERS, extra="concurrency: 2\n",
                  sizes="[" + ", ".join(sizes) + "]")
    assert flow("run", path, env=KEY_ENV).code == 0
    path.write_text(path.read_text().replace("brand: Acme", "brand: Globex"))
    emulator.state.latency = 0.5  # ten calls, two at a time: the signal lands mid-run
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)],
                           env=dict(os.environ, **KEY_ENV), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(emulator.calls()) < len(sizes) + 3:
        time.sleep(0.02)
    run.send_signal(sig)
    out, err = run.communicate(timeout=30)
    assert run.returncode in (130, 143), (out, err)
    _agrees(path)
    prompts = {e["params"]["prompt"] for e in
               read_lock(tmp_path / "brand.lock").instances.values()}
    assert prompts == {"Banner for Acme", "Banner for Globex"}  # some replaced, some not


def test_a_fresh_clone_with_its_cache_restored_changes_no_committed_file(tmp_path: Path,
                                                                        emulator: Emulator) -> None:
    import shutil

    kit = tmp_path / "kit"
    kit.mkdir()
    path = recipe(kit, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0

    def git(*args: str, cwd: Path) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=cwd, check=True, capture_output=True, text=True).stdout

    (kit / ".gitignore").write_text(".flow/\n")
    git("init", "-q", cwd=kit)
    git("add", "-A", cwd=kit)
    git("commit", "-qm", "kit", cwd=kit)
    for assets_committed in (True, False):
        clone = tmp_path / f"clone-{assets_committed}"
        git("clone", "-q", str(kit), str(clone), cwd=tmp_path)
        shutil.copytree(kit / ".flow", clone / ".flow")  # as CI restores its cache
        if not assets_committed:
            for png in (clone / "assets").glob("*.png"):
                png.unlink()
        emulator.reset()
        for args in (["--frozen"], []):
            again = flow("run", clone / "brand.yaml", *args, env=KEY_ENV)
            assert again.code == 0, again
            assert "5 cached" in again.out
        assert emulator.requests() == []
        assert git("status", "--porcelain", cwd=clone) == ""  # byte-identical, gallery too
        status = flow("status", clone / "brand.yaml")
        assert status.code == 0 and "5 fresh, 0 stale, 0 missing" in status.out, status
        # the same answer a full survey gives (the stamp is only a shortcut)
        assert flow("status", clone / "brand.yaml", env={"FLOW_NO_STAMP": "1"}).out == \
            status.out
        # plan too: what the stamp vouches for (the leaf steps) reads no entry, same answer
        planned = flow("plan", clone / "brand.yaml")
        assert planned.code == 0 and "5 cached, 0 to call" in planned.out, planned
        assert flow("plan", clone / "brand.yaml", env={"FLOW_NO_STAMP": "1"}).out == \
            planned.out


def test_missing_or_edited_assets_come_back_from_the_cache_without_a_call(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    logo, banner = tmp_path / "assets" / "logo.png", tmp_path / "assets" / "banner-2048x1024.png"
    logo.unlink()
    banner.write_bytes(b"edited by hand")
    emulator.reset()
    again = flow("run", path, "--frozen", env=KEY_ENV)
    assert again.code == 0, again
    assert "restored 2 files from the cache" in again.out
    assert emulator.requests() == []
    _agrees(path)
    # a corrupt cache object is never copied out: the run notices it and fetches again
    lock = read_lock(tmp_path / "brand.lock").instances
    digest = lock["logo"]["artifacts"][0]["sha256"]
    obj = tmp_path / ".flow" / "cache" / "objects" / digest[:2] / digest
    obj.write_bytes(obj.read_bytes()[:-1] + b"\x00")
    logo.unlink()
    fixed = flow("run", path, env=KEY_ENV)
    assert fixed.code == 0, fixed
    assert "corrupt" in fixed.out and "fetched again" in fixed.out
    _agrees(path)


@pytest.mark.slow
def test_a_run_killed_outright_leaves_a_journal_the_next_run_records(tmp_path: Path,
                                                                     emulator: Emulator) -> None:
    sizes = ["1024x1024", "2048x1024", "1820x1024", "1024x2048", "1365x1024", "1024x1365",
             "1536x1024", "1024x1536", "1434x1024", "1024x1434", "1280x1024", "1024x1280"]
    path = recipe(tmp_path, emulator.base_url, BANNERS, extra="concurrency: 2\n",
                  sizes="[" + ", ".join(sizes) + "]")
    assert flow("run", path, env=KEY_ENV).code == 0
    path.write_text(path.read_text().replace("brand: Acme", "brand: Globex"))
    emulator.state.latency = 0.5  # twelve calls, two at a time: about 3 s
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)],
                           env=dict(os.environ, **KEY_ENV), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    runs = tmp_path / ".flow" / "cache" / "runs"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(runs.glob("*.journal.jsonl")):
        time.sleep(0.02)
    run.kill()  # SIGKILL: no chance to write the lock file
    run.communicate(timeout=30)
    assert list(runs.glob("*.journal.jsonl")), "the run ended before its first journal"
    assert kit_disagreements(path)  # files placed that the lock file does not record yet
    emulator.state.latency = 0
    calls = len(emulator.calls())
    # any next run records what the killed one placed: here one instance it had finished
    journal = [json.loads(line) for line in
               next(runs.glob("*.journal.jsonl")).read_text().splitlines()]
    done = next(r["id"] for r in journal if "Globex" in r["entry"]["params"]["prompt"])
    assert flow("run", path, "--only", done, env=KEY_ENV).code == 0
    assert len(emulator.calls()) == calls  # a cache hit
    _agrees(path)
    assert not list(runs.glob("*.journal.jsonl"))


def test_a_journaled_entry_whose_files_were_never_placed_is_passed_over(tmp_path: Path,
                                                                        emulator: Emulator) -> None:
    """A worker journals an outcome just before replacing its files; a run killed between
    the two leaves a record the disk does not match: the next run keeps the lock's entry."""
    path = recipe(tmp_path, emulator.base_url, BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    lock = read_lock(tmp_path / "brand.lock")
    name, entry = sorted(lock.instances.items())[0]
    intended = json.loads(json.dumps(entry))
    intended["artifacts"][0]["sha256"] = "0" * 64  # what the killed run was about to place
    intended["params"]["prompt"] = "Banner for Globex"
    import hashlib

    runs = tmp_path / ".flow" / "cache" / "runs"
    journal = runs / (hashlib.sha256(str((tmp_path / "brand.lock").resolve()).encode())
                      .hexdigest()[:32] + ".journal.jsonl")
    journal.write_text(json.dumps({"id": name, "entry": intended}) + "\n")
    other = sorted(lock.instances)[1]
    assert flow("run", path, "--only", other, env=KEY_ENV).code == 0
    assert read_lock(tmp_path / "brand.lock").instances[name]["params"]["prompt"] == \
        "Banner for Acme"
    _agrees(path)
