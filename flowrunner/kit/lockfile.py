"""The lock file `<recipe-stem>.lock` beside the recipe: what each instance resolved to.

YAML inside (written by recipe/yaml_text.py, byte for byte as PyYAML's safe dumper would;
read back through recipe/source.py); sorted keys, whole floats as integers, no timestamps,
no absolute paths, so it changes only when a result changes. (The
file, not file locking: that is `Cache.lock`.)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..net.providers import is_mock_identity
from ..recipe.source import load_plain_yaml
from ..recipe.yaml_text import dump_nested, dump_yaml
from ..records import artifact_problem
from ..store.cache import atomic_write_bytes, write_if_changed

LOCK_VERSION = 1
_HEADER = """\
# flowrunner lock file for {recipe}: written by `flow run`. Commit it.
# It records what each step instance resolved to; `flow status` and
# `flow run --frozen` compare against it. Do not edit by hand.
"""


def lock_path_for(recipe_path: Path) -> Path:
    """`brand_assets.yaml` → `brand_assets.lock`, beside it."""
    return recipe_path.with_name(recipe_path.stem + ".lock")


def render_lock(recipe_name: str, entries: dict[str, dict[str, Any]], provider: str) -> str:
    """The lock file's text for ``entries`` (instance id → entry)."""
    # the fields that say what the file is first, then the instances (sorted)
    head = [{"version": LOCK_VERSION}, {"recipe": recipe_name}, {"provider": provider}]
    return (_HEADER.format(recipe=recipe_name) + "".join(dump_yaml(part) for part in head)
            + dump_nested(entries, "instances"))


def write_lock(path: Path, recipe_name: str, entries: dict[str, dict[str, Any]],
               provider: str, *, memo: Path | None = None) -> bool:
    """Write the lock file if its content changed; True when written. With ``memo`` (a
    folder in the cache), remember what the new text holds for `read_lock`."""
    text = render_lock(recipe_name, entries, provider)
    written = write_if_changed(path, text)
    if memo is not None:
        _remember(memo, path, text, {"version": LOCK_VERSION, "recipe": recipe_name,
                                     "provider": provider, "instances": entries})
    return written


def _memo_file(memo: Path, path: Path, text: str) -> Path:
    # the lock file as seen from the cache: the same in every clone when the cache is
    # restored beside the recipe, as CI does
    where = os.path.relpath(path.resolve(), memo.resolve()).replace(os.sep, "/")
    which = hashlib.sha256(where.encode()).hexdigest()[:16]
    return memo / f"{which}-{hashlib.sha256(text.encode()).hexdigest()}.json"


def _remember(memo: Path, path: Path, text: str, data: dict[str, Any]) -> None:
    """Keep ``data`` as JSON under the digest of ``text`` (the previous one of ``path`` goes):
    a fresh clone with its cache restored reads a large lock file in a JSON parse, not a
    YAML one (ten times slower in Python)."""
    if not memo.parent.is_dir():
        return  # no cache here (a checkout without one): never create it as a side effect
    target = _memo_file(memo, path, text)
    try:
        memo.mkdir(exist_ok=True)
        for old in memo.glob(target.name.split("-")[0] + "-*.json"):
            if old != target:
                old.unlink(missing_ok=True)
        if not target.exists():
            # not synced: a memo a power cut damaged fails to parse, and the YAML is read
            atomic_write_bytes(target, json.dumps(data, separators=(",", ":")).encode(),
                               durable=False)
    except OSError:
        pass  # a memo only saves time


@dataclass(frozen=True, slots=True)
class LockFile:
    """A lock file as read: the default provider it names and its instances. An instance
    whose entry is malformed (a path that leaves the recipe's folder, a sha256 that is not
    one) is not among them: it is in ``invalid``, with the reason."""

    provider: str | None
    instances: dict[str, dict[str, Any]]
    invalid: dict[str, str] = field(default_factory=dict)

    def emulated(self, instance_id: str) -> bool:
        """Whether the emulator (`--mock`) made this instance's entry."""
        return bool((self.instances.get(instance_id) or {}).get("emulated"))

    @property
    def any_emulated(self) -> bool:
        return any(self.emulated(name) for name in self.instances)


def merge_entries(old: dict[str, dict[str, Any]], finished: dict[str, dict[str, Any]],
                  ) -> dict[str, dict[str, Any]]:
    """The lock file's entries after a run that finished ``finished`` over ``old``.

    An old entry stays unless the run finished its instance, or saved a file at a path the
    old entry records (that file now belongs to the new entry, so the old one would no
    longer describe the disk).
    """
    claimed = {str(a["path"]) for entry in finished.values()
               for a in entry.get("artifacts", []) if a.get("path")}
    kept = {name: entry for name, entry in old.items() if name not in finished and not any(
        str(a.get("path")) in claimed for a in entry.get("artifacts", []) if a.get("path"))}
    return {**kept, **finished}


def read_lock(path: Path, *, memo: Path | None = None) -> LockFile:
    """The lock file's provider and instances; empty when there is none or it is unreadable.

    With ``memo``, a lock file read before (by its exact text) is taken from its JSON
    memo there, and a new one is remembered."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return LockFile(None, {})
    data: Any = None
    if memo is not None:
        try:
            data = json.loads(_memo_file(memo, path, text).read_bytes())
        except (OSError, ValueError):
            data = None
    if data is None:
        try:
            data = load_plain_yaml(text)
        except ValueError:
            return LockFile(None, {})
        if memo is not None and isinstance(data, dict):
            _remember(memo, path, text, data)
    return parse_lock(data)


def parse_lock(data: Any) -> LockFile:
    """A lock file's parsed YAML (or its memo's JSON) as a LockFile, every instance's
    artifacts checked (see `records.artifact_problem`)."""
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict):
        return LockFile(None, {})
    provider = data.get("provider") if isinstance(data.get("provider"), str) else None
    instances: dict[str, dict[str, Any]] = {}
    invalid: dict[str, str] = {}
    for name, entry in data["instances"].items():
        problem = lock_entry_problem(entry)
        if problem is None:
            instances[str(name)] = entry
        else:
            invalid[str(name)] = problem
    if is_mock_identity(provider):
        # written before entries said who made them: the file's provider says it for all
        for entry in instances.values():
            entry.setdefault("emulated", True)
    return LockFile(provider, instances, invalid)


def invalid_lines(lock: LockFile, name: str) -> list[str]:
    """One warning per instance of ``lock`` that was ignored, with the reason."""
    return [f"{name}: instance {instance} ignored: {problem}"
            for instance, problem in sorted(lock.invalid.items())]


def lock_entry_problem(entry: Any) -> str | None:
    """Why a lock entry may not be used (its artifacts' paths and digests); None if it may."""
    if not isinstance(entry, dict):
        return "its entry is not a mapping"
    artifacts = entry.get("artifacts", [])
    if not isinstance(artifacts, list):
        return "its artifacts are not a list"
    for artifact in artifacts:
        problem = artifact_problem(artifact, with_path=True)
        if problem is not None:
            return problem
    return None
