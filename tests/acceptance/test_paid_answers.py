"""A paid answer is never dropped: when its results cannot be stored (a full disk, a
permission, a race), the answer is kept where the next run finds it, the run says so, and
the next run does not pay again (issue 24). Write failures are injected in-process; the
calls are real HTTP to the emulator."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from helpers import KEY_ENV, recipe

from conftest import CANARY_KEY, Emulator, flow, flow_in_process

LOGO = """
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo", size: 1024x1024}
    save: logo.png
"""


def _generations(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests() if r["path"] == "/recraft/v1/images/generations")


def _fail_once(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> list[int]:
    """Make ``owner.name`` fail once with ENOSPC, as a full disk would."""
    original = getattr(owner, name)
    failed: list[int] = []

    def failing(*args: object, **kwargs: object) -> object:
        if not failed:
            failed.append(1)
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return failed


@pytest.mark.parametrize("where", ["entry", "artifact"])
def test_an_answer_that_cannot_be_stored_is_kept_and_not_paid_for_again(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    from flowrunner.store.cache import Cache

    monkeypatch.setenv("ELKAPI_API_KEY", CANARY_KEY)
    path = recipe(tmp_path, emulator.base_url, LOGO)
    if where == "entry":  # the result entry's write fails
        failed = _fail_once(monkeypatch, Cache, "put")
        monkeypatch.setattr(Cache, "put", _wrap_as_cache_error(Cache.put))
    else:  # the downloaded file cannot be moved into the cache
        failed = _fail_once(monkeypatch, Cache, "adopt_object")
    first = flow_in_process("run", path)
    assert failed and first.code == 1, first
    assert "paid answer" in first.out and "kept in the cache" in first.out, first
    assert "Traceback" not in first.both
    assert _generations(emulator) == 1
    monkeypatch.undo()
    again = flow("run", path, env=KEY_ENV)
    assert again.code == 0, again
    assert _generations(emulator) == 1  # the kept answer, not a second paid call
    assert (tmp_path / "assets" / "logo.png").is_file()
    assert not list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))  # served
    every = b"".join(p.read_bytes() for p in (tmp_path / ".flow").rglob("*") if p.is_file())
    assert CANARY_KEY.encode() not in every


def _wrap_as_cache_error(put):
    """Cache.put maps its OSError to a CacheError, as the real one does."""
    from flowrunner.errors import CacheError

    def wrapped(*args: object, **kwargs: object) -> None:
        try:
            put(*args, **kwargs)
        except OSError as exc:
            raise CacheError(f"cannot write cache entry: {exc.strerror}") from exc

    return wrapped


def test_a_kept_answer_whose_files_are_gone_is_dropped_and_called_anew(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from flowrunner.store.cache import Cache

    monkeypatch.setenv("ELKAPI_API_KEY", CANARY_KEY)
    path = recipe(tmp_path, emulator.base_url, LOGO)
    _fail_once(monkeypatch, Cache, "adopt_object")
    assert flow_in_process("run", path).code == 1
    monkeypatch.undo()
    with emulator.state.lock:
        emulator.state.files.clear()  # the provider's URLs expired
    gone = flow("run", path, env=KEY_ENV)
    assert gone.code == 1 and "cannot be used any more" in gone.out, gone
    assert flow("run", path, env=KEY_ENV).code == 0  # called anew
    assert _generations(emulator) == 2
