"""Records read from places others can write (a shared cache folder, a lock file in a pull
request) never become paths: a forged one is refused, and no file outside the cache and
output folders is read, written or removed (issue 24, defects 2 and 3)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from helpers import KEY_ENV, recipe

from conftest import Emulator, flow

LOGO = """
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo for {{ vars.brand }}", style: digital_illustration, size: 1024x1024}
    save: logo.png
"""


def _forge(store: Path, change) -> Path:
    """Rewrite the shared folder's one result entry with ``change`` applied."""
    [entry_file] = (store / "results").glob("*.json")
    entry = json.loads(entry_file.read_bytes())
    change(entry)
    entry_file.write_text(json.dumps(entry))
    return entry_file


def test_a_forged_sha256_in_a_shared_entry_deletes_nothing(
        tmp_path: Path, emulator: Emulator) -> None:
    store = tmp_path / "shared"
    store.mkdir()
    (tmp_path / "a").mkdir()
    first = recipe(tmp_path / "a", emulator.base_url, LOGO)
    assert flow("run", first, "--remote-cache", store.as_uri(), env=KEY_ENV).code == 0
    (tmp_path / "b").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"the reader's own file")
    # objects/{sha[:2]}/{sha} with this "sha256", seen from b/.flow/cache, is this file
    forged = "../../../victim.txt"

    def point_at_victim(entry: dict) -> None:
        entry["artifacts"][0].update(sha256=forged, bytes=victim.stat().st_size)

    _forge(store, point_at_victim)
    second = recipe(tmp_path / "b", emulator.base_url, LOGO)
    emulator.reset()
    result = flow("run", second, "--remote-cache", store.as_uri(), env=KEY_ENV)
    assert result.code == 0, result
    assert victim.read_bytes() == b"the reader's own file"
    assert "is invalid (an artifact's sha256" in result.out  # said, with the reason
    assert [r["path"] for r in emulator.requests()][:1] == ["/recraft/v1/images/generations"]
    # the entry this run made replaced nothing outside: every object is named by its digest
    for path in (tmp_path / "b" / ".flow" / "cache" / "objects").rglob("*"):
        if path.is_file():
            assert len(path.name) == 64


def test_a_forged_local_entry_is_neither_followed_nor_pushed(
        tmp_path: Path, emulator: Emulator) -> None:
    store = tmp_path / "shared"
    store.mkdir()
    (tmp_path / "r").mkdir()
    first = recipe(tmp_path / "r", emulator.base_url, LOGO)
    assert flow("run", first, env=KEY_ENV).code == 0
    secret = tmp_path / "secret.txt"  # r/.flow/cache/objects/../../../../secret.txt
    secret.write_bytes(b"do not upload")
    [entry_file] = (tmp_path / "r" / ".flow" / "cache" / "results").rglob("*.json")
    entry = json.loads(entry_file.read_bytes())
    entry["artifacts"][0].update(sha256="../../../secret.txt", bytes=secret.stat().st_size)
    entry_file.write_text(json.dumps(entry))
    result = flow("cache", "push", first, "--remote-cache", store.as_uri(), env=KEY_ENV)
    uploaded = [p for p in store.rglob("*") if p.is_file()]
    assert all(p.read_bytes() != b"do not upload" for p in uploaded), result
    assert secret.read_bytes() == b"do not upload"
    emulator.reset()
    rerun = flow("run", first, "--refresh", "logo", env=KEY_ENV)  # looks, then calls again
    assert rerun.code == 0, rerun
    assert secret.read_bytes() == b"do not upload"


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, capture_output=True, check=True)


def test_a_lock_file_in_a_pull_request_cannot_put_a_file_into_the_diff_page(
        tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    path = recipe(repo, "https://api.elkapi.com", LOGO)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "ci@example.invalid")
    _git(repo, "config", "user.name", "CI")
    (repo / ".gitignore").write_text(".flow/\nassets/\n")
    assert flow("run", path, "--mock").code == 0
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "kit")
    secret = tmp_path / "secret.txt"
    secret.write_text("RUNNER_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    lock = path.with_suffix(".lock")
    text = lock.read_text()
    for forged in ("../secret.txt", str(secret), "/proc/self/environ"):
        lines = []
        for line in text.splitlines():
            if line.strip().startswith("path:"):
                line = line.split("path:")[0] + f"path: {forged}"
            elif line.strip().startswith("- bytes:"):
                line = line.split("- bytes:")[0] + "- bytes: 48"
            elif line.strip().startswith("sha256:"):
                line = line.split("sha256:")[0] + "sha256: ''"
            lines.append(line)
        lock.write_text("\n".join(lines) + "\n")
        result = flow("diff", path)
        assert result.code == 0, result
        page = repo / "assets" / "diff.html"
        html = page.read_text() if page.exists() else ""
        leaked = base64.b64encode(secret.read_bytes()).decode()[:24]
        assert leaked not in html and "ghp_abcdef" not in html, forged
        assert base64.b64encode(b"PATH=").decode()[:6] not in html, forged
        assert "ignored: an artifact's sha256" in result.err


def test_a_task_journal_planted_in_a_shared_folder_is_not_taken_as_an_answer(
        tmp_path: Path, emulator: Emulator) -> None:
    """A store's tasks/KEY.json may resume another machine's submitted task; it may not
    hand a run an answer (which it would then sign and share as its own result)."""
    store = tmp_path / "shared"
    (store / "tasks").mkdir(parents=True)
    first = recipe(tmp_path, emulator.base_url, LOGO)
    from flowrunner.run.planning import load_plan
    from flowrunner.run.survey import survey_plan
    from flowrunner.store.cache import Cache

    [item] = survey_plan(load_plan(first), cache=Cache(tmp_path / "c"), mock=False)
    assert item.call is not None
    key = item.call.key
    evil = {"endpoint": "recraft.generate_image",
            "answer": {"data": [{"url": f"{emulator.base_url}/files/nothing.png"}]}}
    (store / "tasks" / f"{key}.json").write_text(json.dumps(evil))
    result = flow("run", first, "--remote-cache", store.as_uri(),
                  env={**KEY_ENV, "FLOW_CACHE_SECRET": "team-secret-123456"})
    assert result.code == 0, result
    assert [r["path"] for r in emulator.requests()][:1] == ["/recraft/v1/images/generations"]
