"""The cache, the lock file and CI mode, end to end against the emulator."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import BANNERS, KEY_ENV, LOGO_CHAIN, by_endpoint, recipe, sha256

from conftest import Emulator, flow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FLOW_CACHE_DIR",)}
    env.update(KEY_ENV)
    return env


def _check_cache_whole(cache: Path) -> int:
    """Every result parses and every object matches its digest; returns the entry count."""
    entries = 0
    for result in (cache / "results").rglob("*.json"):
        entry = json.loads(result.read_text())
        entries += 1
        for artifact in entry["artifacts"]:
            blob = cache / "objects" / artifact["sha256"][:2] / artifact["sha256"]
            assert sha256(blob) == artifact["sha256"]
    return entries


def test_frozen_exits_4_without_any_request_then_0_when_cached(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    frozen = flow("run", path, "--frozen")
    assert frozen.code == 4, frozen
    assert "--frozen: 5 instance(s) are not in the cache" in frozen.err
    assert emulator.requests() == []
    assert flow("run", path, env=KEY_ENV).code == 0
    emulator.reset()
    again = flow("run", path, "--frozen")  # no key needed when everything is cached
    assert again.code == 0, again
    assert emulator.requests() == []


def test_changing_one_variable_calls_only_what_changed(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    emulator.reset()
    # a new size adds one banner instance; nothing else changes
    result = flow("run", path, "--var", "sizes=[1024x1024, 2048x1024, 1820x1024]", env=KEY_ENV)
    assert result.code == 0, result
    assert [r["json"]["size"] for r in emulator.calls()] == ["1820x1024"]
    emulator.reset()
    # the brand is in every prompt: the logo chain and both banners call again; the clean
    # and svg steps call because their uploaded file changed
    result = flow("run", path, "--var", "brand=Umbrella", env=KEY_ENV)
    assert result.code == 0, result
    assert by_endpoint(emulator.requests()) == {"/recraft/v1/images/generations": 3,
                                                "/recraft/v1/images/removeBackground": 1,
                                                "/recraft/v1/images/vectorize": 1}


def test_deleted_output_folder_is_restored_without_requests(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    before = {p.name: sha256(p) for p in (tmp_path / "assets").iterdir() if p.suffix == ".png"}
    shutil.rmtree(tmp_path / "assets")
    emulator.reset()
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert emulator.requests() == []
    assert {p.name: sha256(p) for p in (tmp_path / "assets").iterdir()
            if p.suffix == ".png"} == before


def _object_of(cache: Path, asset: Path) -> Path:
    digest = sha256(asset)
    return cache / "objects" / digest[:2] / digest


def test_link_hardlink_restores_files_as_read_only_links_to_the_cache(tmp_path: Path,
                                                                        emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    cache, assets = tmp_path / ".flow" / "cache", tmp_path / "assets"
    before = {p.name: sha256(p) for p in assets.iterdir() if p.name != "index.html"}
    # both ways a restore happens: the run stamp's (assets gone, nothing else changed)
    # and the scheduler's (the stamp gone too)
    for forget_stamp in (False, True):
        shutil.rmtree(assets)
        if forget_stamp:
            shutil.rmtree(cache / "runs")
        emulator.reset()
        result = flow("run", path, env={**KEY_ENV, "FLOW_CACHE_LINK": "hardlink"})
        assert result.code == 0, result
        assert emulator.requests() == []
        restored = {p.name: sha256(p) for p in assets.iterdir() if p.name != "index.html"}
        assert restored == before
        for name in before:
            blob = _object_of(cache, assets / name)
            assert (assets / name).stat().st_ino == blob.stat().st_ino, name
            assert blob.stat().st_mode & 0o222 == 0, f"{name}'s object is still writable"
        assert flow("verify", path).code == 0


def test_an_edit_through_a_hard_link_is_noticed_and_mended(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    env = {**KEY_ENV, "FLOW_CACHE_LINK": "hardlink"}
    assert flow("run", path, "--only", "logo", env=env).code == 0
    logo = tmp_path / "assets" / "logo.png"
    blob = _object_of(tmp_path / ".flow" / "cache", logo)
    # as root the read-only mode does not stop an in-place write: it reaches the object
    os.chmod(logo, 0o644)
    with open(logo, "r+b") as handle:
        handle.write(b"\x89PNG edited in place")
    assert blob.read_bytes().startswith(b"\x89PNG edited")
    emulator.reset()
    result = flow("run", path, "--only", "logo", env=env)
    assert result.code == 0, result
    assert "corrupt" in result.out
    assert len(emulator.calls()) == 1
    assert sha256(logo) == sha256(blob) == blob.name
    assert flow("verify", path).code == 0


def test_link_hardlink_copies_when_the_cache_is_on_another_filesystem(tmp_path: Path,
                                                                       emulator: Emulator) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        import pytest

        pytest.skip("needs a second filesystem (/dev/shm)")
    cache = Path(tempfile.mkdtemp(dir=shm, prefix="flow-test-cache-"))
    try:
        path = recipe(tmp_path, emulator.base_url, BANNERS)
        env = {**KEY_ENV, "FLOW_CACHE_LINK": "hardlink"}
        assert flow("run", path, "--cache-dir", cache, env=env).code == 0
        banners = sorted((tmp_path / "assets").glob("banner-*.png"))
        assert len(banners) == 2
        for banner in banners:
            assert banner.stat().st_nlink == 1
            assert sha256(banner) == _object_of(cache, banner).name
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_corrupt_object_is_detected_and_fetched_again(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    assert flow("run", path, "--only", "logo", env=KEY_ENV).code == 0
    logo = tmp_path / "assets" / "logo.png"
    blob = tmp_path / ".flow" / "cache" / "objects" / sha256(logo)[:2] / sha256(logo)
    blob.write_bytes(b"\x89PNG garbage")
    logo.unlink()
    emulator.reset()
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 0, result
    assert "was corrupt; treated as missing and fetched again" in result.out
    assert len(emulator.calls()) == 1
    assert sha256(blob) == blob.name
    assert logo.read_bytes().startswith(b"\x89PNG\r\n")


def test_lock_file_is_byte_identical_across_runs_and_sorted(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    lock = tmp_path / "brand.lock"
    first = lock.read_bytes()
    assert flow("run", path, env=KEY_ENV).code == 0
    assert lock.read_bytes() == first
    text = first.decode()
    assert "banner[size=1024x1024]" in text and str(tmp_path) not in text
    assert f"provider: {emulator.base_url}\n" in text
    # a fresh cache elsewhere gives the same lock: nothing machine- or time-specific
    shutil.rmtree(tmp_path / ".flow")
    assert flow("run", path, env=KEY_ENV).code == 0
    assert lock.read_bytes() == first


def _row(out: str, instance: str) -> tuple[str, str]:
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[1] == instance:
            return parts[0], parts[2] if len(parts) > 2 else ""
    raise AssertionError(f"no row for {instance} in:\n{out}")


def test_status_fresh_stale_missing(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    missing = flow("status", path)
    assert missing.code == 1
    assert _row(missing.out, "logo") == ("missing", "(not in the cache)")
    assert _row(missing.out, "clean") == ("missing", "(waits for logo)")
    assert flow("run", path, env=KEY_ENV).code == 0
    fresh = flow("status", path)
    assert fresh.code == 0, fresh
    assert "5 fresh, 0 stale, 0 missing" in fresh.out
    path.write_text(path.read_text().replace("Banner for", "Poster for"))
    stale = flow("status", path)
    assert stale.code == 1
    assert _row(stale.out, "banner[size=1024x1024]") == (
        "stale", "(the recipe changed since the lock file was written)")
    assert _row(stale.out, "logo") == ("fresh", "")
    shutil.rmtree(tmp_path / ".flow")
    path.write_text(path.read_text().replace("Poster for", "Banner for"))
    gone = flow("status", path)
    assert gone.code == 1
    assert _row(gone.out, "logo") == ("missing", "(not in the cache)")


def test_why_names_the_changed_parameter_and_the_uploaded_file(tmp_path: Path,
                                                               emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    assert flow("run", path, env=KEY_ENV).code == 0
    cached = flow("why", path, "logo")
    assert cached.code == 0
    assert "logo: cached" in cached.out and '"endpoint": "recraft.generate_image"' in cached.out
    assert "ELKAPI" not in cached.out and "Bearer" not in cached.out
    path.write_text(path.read_text().replace("style: digital_illustration",
                                             "style: realistic_image"))
    changed = flow("why", path, "logo")
    assert 'with.style: "digital_illustration" → "realistic_image"' in changed.out
    # run the logo again; the next step's upload changed
    assert flow("run", path, "--only", "logo", env=KEY_ENV).code == 0
    upload = flow("why", path, "clean")
    assert "with.image: uploaded file changed (sha256" in upload.out


def test_verify_detects_drift(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    assert flow("run", path, env=KEY_ENV).code == 0
    ok = flow("verify", path)
    assert ok.code == 0 and "3 files match brand.lock" in ok.out
    (tmp_path / "assets" / "logo.png").write_bytes(b"edited")
    (tmp_path / "assets" / "logo.svg").unlink()
    bad = flow("verify", path)
    assert bad.code == 1
    assert "changed  assets/logo.png  (logo: sha256 differs from the lock)" in bad.out
    assert "missing  assets/logo.svg  (svg)" in bad.out


def test_cache_ls_gc_clear(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    assert flow("run", path, "--var", "brand=Old", env=KEY_ENV).code == 0
    cache = tmp_path / ".flow" / "cache"
    listing = flow("cache", "ls", "--cache-dir", cache)
    assert listing.code == 0
    assert "10 entries" in listing.out and "recraft.vectorize" in listing.out
    # the lock now describes brand=Old; gc keeps the current plan (Acme) and the lock (Old)
    path.write_text(path.read_text().replace("brand: Acme", "brand: New"))
    gc = flow("cache", "gc", path)
    assert gc.code == 0
    assert "removed 5 entries" in gc.out
    assert len(list((cache / "results").rglob("*.json"))) == 5
    cleared = flow("cache", "clear", "--cache-dir", cache)
    assert cleared.code == 0 and "removed 5 cache entries" in cleared.out
    assert not list(cache.rglob("*.json"))


def test_cache_dir_option_and_environment(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    elsewhere = tmp_path / "shared-cache"
    assert flow("run", path, "--cache-dir", elsewhere, env=KEY_ENV).code == 0
    assert list((elsewhere / "results").rglob("*.json"))
    assert not (tmp_path / ".flow").exists()
    emulator.reset()
    result = flow("run", path, env={**KEY_ENV, "FLOW_CACHE_DIR": str(elsewhere)})
    assert result.code == 0
    assert emulator.requests() == []


def test_no_cache_and_refresh(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    assert flow("run", path, env=KEY_ENV).code == 0
    emulator.reset()
    assert flow("run", path, "--no-cache", env=KEY_ENV).code == 0
    assert len(emulator.calls()) == 3
    emulator.reset()
    assert flow("run", path, "--refresh", "clean", env=KEY_ENV).code == 0
    assert [c["path"] for c in emulator.calls()] == ["/recraft/v1/images/removeBackground",
                                                     "/recraft/v1/images/vectorize"]


def test_step_with_cache_false_always_calls(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.replace(
        "    save: logo.png\n", "    save: logo.png\n    cache: false\n"))
    assert flow("run", path, "--only", "logo", env=KEY_ENV).code == 0
    assert flow("run", path, "--only", "logo", env=KEY_ENV).code == 0
    assert len(emulator.calls()) == 2


@pytest.mark.slow
def test_two_concurrent_runs_share_a_cache_and_call_each_key_once(tmp_path: Path,
                                                                 emulator: Emulator) -> None:
    emulator.state.latency = 0.3
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    command = [sys.executable, "-m", "flowrunner", "run", str(path)]
    runs = [subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    bodies = [json.dumps(c.get("json") or c.get("files"), sort_keys=True)
              for c in emulator.calls()]
    assert len(bodies) == 5 and len(set(bodies)) == 5
    assert _check_cache_whole(tmp_path / ".flow" / "cache") == 5


@pytest.mark.slow
def test_kill_9_leaves_no_partial_entry_and_finished_steps_are_not_called_again(
        tmp_path: Path, emulator: Emulator) -> None:
    emulator.state.latency = 0.4
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS,
                  sizes="[1024x1024, 2048x1024, 1820x1024, 1365x1024, 1024x1365, 1536x1024]",
                  extra="concurrency: 2\n")
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = tmp_path / ".flow" / "cache"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(cache.rglob("results/*/*.json"))) < 3:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    finished = _check_cache_whole(cache)
    assert 3 <= finished < 9
    done_bodies = {json.dumps(c.get("json") or c.get("files"), sort_keys=True)
                   for c in emulator.calls()}
    emulator.state.latency = 0
    emulator.reset()
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    again = [json.dumps(c.get("json") or c.get("files"), sort_keys=True) for c in emulator.calls()]
    assert len(again) == 9 - finished
    assert _check_cache_whole(cache) == 9
    assert done_bodies  # the killed run had made calls


@pytest.mark.slow
def test_interrupted_task_is_resumed_not_resubmitted(tmp_path: Path, emulator: Emulator) -> None:
    emulator.pending_polls = 2  # what happens while the task runs
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: flux.generate
    with: {model: flux-pro-1.1, prompt: "A fox", width: 512, height: 512}
    save: hero.png
""")
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            r["path"] == "/flux/v1/get_result" for r in emulator.requests()):
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    journal = list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))
    assert len(journal) == 1
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert "resumed task" in result.out
    submits = [r for r in emulator.requests() if r["path"] == "/flux/v1/flux-pro-1.1"]
    assert len(submits) == 1
    assert not list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))
    assert (tmp_path / "assets" / "hero.png").is_file()


def test_changed_input_file_calls_again_even_after_a_no_op_run(tmp_path: Path,
                                                              emulator: Emulator) -> None:
    from flowrunner.emulator.images import png

    (tmp_path / "ref.png").write_bytes(png(64, 64, "one"))
    path = recipe(tmp_path, emulator.base_url, """
  style:
    uses: recraft.create_style
    with: {style: digital_illustration, images: [ref.png]}
""")
    assert flow("run", path, env=KEY_ENV).code == 0
    assert flow("run", path, env=KEY_ENV).code == 0  # unchanged: answered from the stamp
    assert len(emulator.calls()) == 1
    (tmp_path / "ref.png").write_bytes(png(64, 64, "two"))
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = emulator.calls()
    assert len(calls) == 2
    assert calls[1]["files"][0]["sha256"] == sha256(tmp_path / "ref.png")


def test_unchanged_rerun_reports_every_instance_as_cached(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    first = flow("run", path, "--json", env=KEY_ENV)
    assert first.code == 0
    again = flow("run", path, "--json", env=KEY_ENV)
    events = [json.loads(line) for line in again.out.splitlines()]
    assert [e["instance"] for e in events if e["event"] == "step_cached"] == [
        "logo", "clean", "svg", "banner[size=1024x1024]", "banner[size=2048x1024]"]
    assert events[-1]["cached"] == 5 and events[-1]["ok"] is True
    # an edited lock file or a deleted asset is noticed: the normal run restores it
    (tmp_path / "assets" / "logo.svg").unlink()
    restored = flow("run", path, env=KEY_ENV)
    assert restored.code == 0
    assert (tmp_path / "assets" / "logo.svg").is_file()
    assert len(emulator.calls()) == 5


def test_local_image_steps_are_cached_need_no_key_and_follow_their_input(tmp_path: Path,
                                                                        emulator: Emulator) -> None:
    from flowrunner.emulator.images import png

    (tmp_path / "logo.png").write_bytes(png(300, 300, "one"))
    path = recipe(tmp_path, emulator.base_url, """
  icons:
    uses: image.favicon
    with: {image: logo.png}
    save: [favicon.ico, touch.png, i192.png, i512.png]
  small:
    uses: image.resize
    with: {image: "{{ steps.icons.files[3] }}", width: 64, format: webp}
    save: small
""")
    first = flow("run", path)  # no key: nothing here calls the provider
    assert first.code == 0, first
    assert (tmp_path / "assets" / "small.webp").read_bytes()[8:12] == b"WEBP"
    assert emulator.requests() == []
    stamp_free = {**KEY_ENV, "FLOW_NO_STAMP": "1"}
    again = flow("run", path, env=stamp_free)
    assert "2 instances: 0 called, 2 cached" in again.out
    (tmp_path / "logo.png").write_bytes(png(300, 300, "two"))
    changed = flow("run", path, env=stamp_free)
    assert "2 instances: 2 called, 0 cached" in changed.out


def test_mock_results_never_pass_for_real_ones(tmp_path: Path) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", LOGO_CHAIN)
    assert flow("run", path, "--mock").code == 0
    status = flow("status", path)
    assert status.code == 1
    assert "made by the emulator (--mock), not by the provider" in status.out
    assert "0 fresh, 3 stale, 0 missing" in status.out
    assert flow("status", path, "--mock").code == 0  # against the emulator's results: fresh
    verify = flow("verify", path)
    assert verify.code == 1 and "made by the emulator" in verify.out
    assert flow("verify", path, "--mock").code == 0
    why = flow("why", path, "logo")
    assert "made by the emulator (--mock)" in why.out and "will call" in why.out
    frozen = flow("run", path, "--frozen")
    assert frozen.code == 4  # a real run would call: nothing real is cached
