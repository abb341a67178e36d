"""The run stamp: what the last successful run of a recipe read and wrote, so that an
unchanged re-run is recognised without parsing, rendering or importing anything heavy.

A stamp records the recipe's sha256, the options that shape the run, and (size, mtime,
sha256) of every file the run depended on: local input files, the saved assets, the lock
file and the cache entries (objects by size). If all still match, the run would only find
cache hits and restore nothing, so it is reported as such. A fresh clone with its cache
restored has new times everywhere: then contents decide, one read per file, without
parsing or rendering the recipe. Anything that differs, or any doubt, means a normal run.
Lives in `<cache>/runs/`. Imports only the JSON helper and the cache's atomic write.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._json import canonical_json
from ..records import is_sha256, is_size, relative_path

STAMP_VERSION = 3  # 3: the folders a run read (`catalog:` folders) are recorded


def _stat(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL in a name a damaged stamp recorded
        return None
    return info.st_size, info.st_mtime_ns


def _sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except (OSError, ValueError):
        return None
    return digest.hexdigest()


def _inside(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` (absolute, ending in a separator) when it is an
    absolute path below it with nothing to normalise (no `.`, `..` or empty part);
    else None."""
    if not path.startswith(folder):
        return None
    parts = path[len(folder):].split(os.sep)
    if "" in parts or "." in parts or parts[0].startswith("..") or ".." in parts \
            or (os.altsep and os.altsep in path):
        return None
    return "/".join(parts)


def listing_digest(folder: str) -> str | None:
    """The sha256 of the sorted names of every file below ``folder`` (None when it cannot
    be listed): a file added, removed or renamed there changes it."""
    names: list[str] = []
    try:
        for top, dirs, files in os.walk(folder, onerror=_raise):
            dirs.sort()
            relative = os.path.relpath(top, folder)
            names.extend(os.path.join(relative, name) for name in files)
    except (OSError, ValueError):
        return None
    return hashlib.sha256("\0".join(sorted(names)).encode()).hexdigest()


def _raise(exc: OSError) -> None:
    raise exc


def stamp_file(cache_root: Path, recipe: Path, context: dict[str, Any]) -> Path:
    """Where the stamp of this recipe, run with these options, lives: named by the recipe
    as seen from the cache (the same in every clone whose cache is restored beside it)."""
    where = os.path.relpath(recipe.resolve(), cache_root.resolve()).replace(os.sep, "/")
    material = canonical_json({"recipe": where, **context})
    return cache_root / "runs" / (hashlib.sha256(material.encode()).hexdigest()[:32] + ".json")


@dataclass(slots=True)
class Stamp:
    """What a successful run depended on and reported.

    ``files`` maps a path (relative to the recipe's folder when inside it, so a fresh
    clone elsewhere matches) to [size, mtime_ns, sha256]: a file whose size and time match
    is unchanged; one with a new time (a fresh clone, a restored cache) is unchanged when
    its sha256 still matches. A sha256 of None means existence and size are all that count
    (cache objects, which a normal run checks no further either).
    """

    recipe_sha256: str
    base: Path
    files: dict[str, list[Any]] = field(default_factory=dict)
    # folders whose listing a run depended on (a `catalog:` folder): key → `listing_digest`
    folders: dict[str, str | None] = field(default_factory=dict)
    instances: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    # saved assets that are missing or changed: (path, sha256 of the cache object to copy)
    restore: list[tuple[str, str]] = field(default_factory=list)
    # the output folder the recipe itself declares (None: it cannot be told from its text);
    # never the stamp's word for it: a stamp lives in a cache others may have written
    declared_output: str | None = None

    def record(self, path: Path | str, *, sha256: str | None = None,
               size_only: bool = False, object_of: bool = False) -> None:
        """Record ``path`` as the run leaves it (``sha256`` when already known).

        ``object_of``: a saved asset, a copy of the cache object ``sha256``: when it is
        missing or differs later, copying that object back is all it takes."""
        text = str(path)
        found = _stat(text)
        if found is None:
            self.files[self.key(text)] = [None, None, None]
            return
        digest = None if size_only else (sha256 or _sha256(text))
        self.files[self.key(text)] = [found[0], None if size_only else found[1], digest] + \
            ([1] if object_of else [])

    def record_folder(self, path: Path | str) -> None:
        """Record the listing of folder ``path`` (its files' names, recursively)."""
        self.folders[self.key(str(path))] = listing_digest(str(path))

    def key(self, path: str) -> str:
        """How ``path`` is written in the stamp."""
        inside = _inside(path, f"{self.base}{os.sep}")
        if inside is not None:  # what relpath says, in a tenth of its time
            return inside
        relative = os.path.relpath(os.path.abspath(path), self.base)
        return path if relative.startswith("..") else relative.replace(os.sep, "/")

    def path_of(self, key: str) -> str:
        return key if os.path.isabs(key) else os.path.join(self.base, key)

    def write(self, target: Path) -> None:
        from ..store.cache import atomic_write_bytes

        doc = {"v": STAMP_VERSION, "recipe_sha256": self.recipe_sha256, "files": self.files,
               "folders": self.folders, "instances": self.instances,
               "summary": self.summary}
        atomic_write_bytes(target, json.dumps(doc, separators=(",", ":")).encode())


def read_fresh_stamp(target: Path, recipe: Path, *,
                     objects: Path | None = None) -> Stamp | None:
    """The stamp at ``target`` if the recipe and every recorded file are unchanged (by
    size and time, else by content). When contents matched under new times, the stamp is
    rewritten with them, so the next run checks times only again.

    With ``objects`` (the cache's objects folder), saved assets that are missing or changed
    do not spoil the stamp when their cache object is there: they are listed in
    ``restore`` for the caller to copy back (the stamp is then rewritten by the caller)."""
    try:
        doc = json.loads(target.read_bytes())
        recipe_bytes = recipe.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != STAMP_VERSION:
        return None
    if hashlib.sha256(recipe_bytes).hexdigest() != doc.get("recipe_sha256"):
        return None
    files = doc.get("files")
    if not _well_formed(doc) or not isinstance(files, dict):
        return None  # a damaged or forged stamp: the normal run decides
    stamp = Stamp(recipe_sha256=doc["recipe_sha256"], base=recipe.resolve().parent,
                  files=files, folders=dict(doc.get("folders", {})),
                  instances=list(doc.get("instances", [])),
                  summary=dict(doc.get("summary", {})),
                  declared_output=declared_output_dir(recipe_bytes))
    for key, digest in stamp.folders.items():
        if listing_digest(stamp.path_of(key)) != digest:
            return None  # a file was added to or removed from a folder the run read
    retimed = False
    for key, recorded in files.items():
        size, mtime, digest = recorded[:3]
        path = stamp.path_of(key)
        found = _stat(path)
        if found is not None and size is not None and found[0] == size and (
                mtime is None or found[1] == mtime):
            continue
        if found is None and size is None:
            continue
        if found is not None and size is not None and found[0] == size and \
                digest is not None and _sha256(path) == digest:
            recorded[1] = found[1]
            retimed = True
            continue
        if len(recorded) > 3 and objects is not None and is_sha256(digest) and \
                relative_path(key) is not None and \
                _stat(f"{objects}/{digest[:2]}/{digest}") is not None:
            stamp.restore.append((path, digest))
            continue
        return None
    if retimed and not stamp.restore:
        try:
            stamp.write(target)
        except OSError:
            pass  # the next run checks contents again
    return stamp


DEFAULT_OUTPUT_DIR = "assets"  # as recipe/spec.py's: a recipe without `output_dir:`
_OUTPUT_LINE = re.compile(rb"^output_dir:[ \t]*(?P<value>[^#\r\n]*?)[ \t]*(?:#[^\r\n]*)?\r?$",
                          re.M)
_PLAIN_FOLDER = re.compile(r"[A-Za-z0-9_./ -]+")


def declared_output_dir(recipe: bytes) -> str | None:
    """The recipe's `output_dir:` read from its text, without parsing it (the stamp's path
    never loads YAML): the one top-level line that sets it, plain or quoted, else the
    default; None when its text leaves any doubt (another mention, escapes, flow style)."""
    lines = _OUTPUT_LINE.findall(recipe)
    mentions = recipe.count(b"output_dir")
    if not lines:
        return DEFAULT_OUTPUT_DIR if mentions == 0 else None
    if len(lines) != 1 or mentions != 1:
        return None
    try:
        value = lines[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value if value and _PLAIN_FOLDER.fullmatch(value) else None


def _well_formed(doc: dict[str, Any]) -> bool:
    """Whether a stamp's fields have the shapes this module writes: each file's record
    [size, mtime_ns, sha256 (, 1)], each instance's names, the summary's names as strings,
    the folders as relative paths inside the recipe's folder. A stamp is read from the
    cache, which a CI job may restore from elsewhere: none of its fields is used before
    this says yes."""
    files, instances, summary = doc.get("files"), doc.get("instances"), doc.get("summary")
    folders = doc.get("folders", {})
    if not isinstance(files, dict) or not isinstance(instances, list) or \
            not isinstance(summary, dict) or not isinstance(folders, dict) or not all(
                (digest is None or is_sha256(digest)) and relative_path(key) is not None
                for key, digest in folders.items()):
        return False
    for recorded in files.values():
        if not isinstance(recorded, list) or not 3 <= len(recorded) <= 4 or not (
                recorded[0] is None or is_size(recorded[0])) or not (
                recorded[1] is None or is_size(abs(recorded[1]) if isinstance(
                    recorded[1], int) else None)) or not (
                recorded[2] is None or is_sha256(recorded[2])):
            return False
    for item in instances:
        if not isinstance(item, dict) or not all(
                isinstance(item.get(name), str) for name in ("id", "step", "endpoint")):
            return False
    # the summary's names are shown, never followed (the restore takes the output folder
    # from the recipe's own text): strings, or none
    return all(value is None or isinstance(value, str) for value in
               (summary.get("output_dir"), summary.get("lock"), summary.get("gallery")))


def fresh_stamp(recipe: Path, cache_root: Path, context: dict[str, Any]) -> Stamp | None:
    """The stamp `flow run` with these options left for ``recipe``, when everything it
    recorded is unchanged (`status` and `plan` answer from it); None without one, or
    with FLOW_NO_STAMP set."""
    if os.environ.get("FLOW_NO_STAMP"):
        return None
    return read_fresh_stamp(stamp_file(cache_root, recipe, context), recipe)
