"""The sidecar files a finished run leaves behind besides the assets: the lock file's
entries, the run stamp, the gallery page and the CI step summary."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog.entries import CREDIT_UNITS, Endpoint
from ..recipe.graph import Instance, Plan
from ..recipe.spec import Step
from ..run.options import RunOptions, display
from ..run.results import RunResult, StepResult
from ..store.cache import Cache, sha256_file
from .lockfile import (
    invalid_lines,
    lock_entry_problem,
    merge_entries,
    read_lock,
    write_lock,
)
from .stamp import Stamp, stamp_file

if TYPE_CHECKING:
    from .gallery import Asset, Card, Section


@functools.lru_cache(maxsize=64)
def _folder_from_recipe(output_dir: Path, recipe_folder: Path) -> str | None:
    """The output folder relative to the recipe's folder ("." when the same), or None
    when it is outside it."""
    relative = os.path.relpath(output_dir, recipe_folder)
    return None if relative.startswith("..") else Path(relative).as_posix()


def _lock_path(saved: str, output_dir: Path, recipe_folder: Path) -> str:
    """How the lock file names a saved file (``saved`` is relative to the output folder):
    relative to the recipe's folder when inside it, else as saved."""
    folder = _folder_from_recipe(output_dir, recipe_folder)
    if folder is not None and not {"", ".", ".."} & set(saved.split("/")) and "\\" not in saved:
        return saved if folder == "." else f"{folder}/{saved}"
    relative = os.path.relpath(output_dir / saved, recipe_folder)
    return saved if relative.startswith("..") else Path(relative).as_posix()


def lock_entry(item: StepResult, recipe_folder: Path, output_dir: Path, *, mock: bool,
               overrides: dict[str, Any]) -> dict[str, Any]:
    """The lock file's entry of one finished (called or cached) instance."""
    artifacts = []
    for position, artifact in enumerate(item.artifacts):
        record = {"sha256": artifact["sha256"], "bytes": artifact["bytes"]}
        if artifact.get("role"):
            record["role"] = artifact["role"]
        if position < len(item.saved):
            record["path"] = _lock_path(item.saved[position], output_dir, recipe_folder)
        artifacts.append(record)
    # result URLs expire and differ per call: the lock keeps only stable outputs
    outputs = {k: v for k, v in item.outputs.items() if k != "credits" and not (
        isinstance(v, str) and v.startswith(("http://", "https://"))) and not (
        isinstance(v, list) and any(isinstance(u, str) and u.startswith("http") for u in v))}
    entry = {"step": item.step_id, "endpoint": item.endpoint, "key": item.key,
             "params": item.params, "credits": item.credits, "outputs": outputs,
             "artifacts": artifacts}
    if item.credits_estimated:
        entry["credits_estimated"] = True  # the answer named no cost: the catalog's price
    if mock:
        entry["emulated"] = True  # placeholders: never fresh for a run without --mock
    if overrides:
        entry["vars"] = overrides  # made with --var/--vars-file: stale against the recipe
    return entry


def _same_outcome(before: StepResult, after: StepResult) -> bool:
    """Whether ``after`` has what `lock_entry` reads of ``before`` (the same objects: a
    result's parts are replaced, never changed in place)."""
    return (before.saved == after.saved and before.key == after.key
            and before.credits == after.credits and before.step_id == after.step_id
            and before.endpoint == after.endpoint and before.params is after.params
            and before.outputs is after.outputs and before.artifacts is after.artifacts)


class LockKeeper:
    """Keeps the lock file describing the files on disk while a run places them.

    Each finished instance's entry goes in as it finishes, over the entries of earlier runs
    (`lockfile.merge_entries`). During the run each entry is appended to a journal in the
    cache (`runs/*.journal.jsonl`, one JSON line as the instance completes: a small write,
    where rendering the lock file in the main thread cost a fast batch a fifth of its
    speed, issue 16); at its end, whatever kind of run it was, the lock file is written and
    the journal removed. A run killed outright (no chance to write the lock) leaves its
    journal: the next run starts from it, so the files that run placed are recorded. A run
    that finished every instance of the recipe (no --only, nothing failed, skipped or
    stopped) writes exactly its own entries, dropping those of instances that are no
    longer in the recipe.
    """

    def __init__(self, lock_file: Path, *, recipe_name: str, provider: str,
                 recipe_folder: Path, output_dir: Path, mock: bool,
                 overrides: dict[str, Any], memo: Path | None = None) -> None:
        self.path = lock_file
        self._recipe_name = recipe_name
        self._provider = provider
        self._folder = recipe_folder
        self._output_dir = output_dir
        self._mock = mock
        self._overrides = overrides
        self._memo = memo  # the cache's folder of parsed lock files
        earlier = read_lock(lock_file, memo=memo)
        self.problems = invalid_lines(earlier, lock_file.name)  # said by the run
        # what the file holds now, when it is in this version's shape for this provider
        # (else it is rewritten even if its entries are the same)
        self._on_disk = earlier.instances if earlier.provider == provider else None
        self.journal = memo.parent / "runs" / (
            hashlib.sha256(str(lock_file.resolve()).encode()).hexdigest()[:32]
            + ".journal.jsonl") if memo is not None else None
        self.earlier = merge_entries(earlier.instances, self._killed_run_entries())
        self.finished: dict[str, dict[str, Any]] = {}
        self.entries = self.earlier
        self._journal_fd: int | None = None
        self._journal_lock = threading.Lock()
        self._journaled: dict[str, dict[str, Any]] = {}  # by `intend`, awaiting `add`
        self._intended: dict[str, tuple[StepResult, dict[str, Any]]] = {}  # the same

    def _killed_run_entries(self) -> dict[str, dict[str, Any]]:
        """What a run that was killed before writing the lock file had placed: the latest
        journaled entry of each instance whose files are on disk as it says (an entry
        journaled just before its files were replaced, and killed then, is passed over)."""
        found: dict[str, dict[str, Any]] = {}
        if self.journal is None:
            return found
        try:
            lines = self.journal.read_bytes().splitlines()
        except OSError:
            return found
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line the kill cut short
            if isinstance(record, dict) and lock_entry_problem(record.get("entry")) is None and \
                    self._on_disk_as(record["entry"]):
                found[str(record.get("id"))] = record["entry"]
        return found

    def _on_disk_as(self, entry: dict[str, Any]) -> bool:
        """Whether every file the entry records is on disk with its sha256."""
        for artifact in entry.get("artifacts", []):
            if not artifact.get("path"):
                continue
            try:
                if sha256_file(self._folder / str(artifact["path"])) != artifact.get("sha256"):
                    return False
            except OSError:
                return False
        return True

    def intend(self, item: StepResult) -> None:
        """Journal an outcome before its files are replaced (called from a worker)."""
        entry = lock_entry(item, self._folder, self._output_dir, mock=self._mock,
                           overrides=self._overrides)
        self._intended[item.instance_id] = (item, entry)
        if entry != self.earlier.get(item.instance_id):
            self._journal_append(item.instance_id, entry)
            self._journaled[item.instance_id] = entry

    def add(self, item: StepResult) -> None:
        """Take a finished instance's outcome (called from the scheduler's thread)."""
        if item.status not in ("ok", "cached"):
            return
        intended = self._intended.pop(item.instance_id, None)
        # the entry `intend` made, when nothing it was made of changed since (the usual
        # case: the files went where they were meant to)
        entry = intended[1] if intended is not None and _same_outcome(intended[0], item) \
            else lock_entry(item, self._folder, self._output_dir, mock=self._mock,
                            overrides=self._overrides)
        self.finished[item.instance_id] = entry
        # journaled already when its files were about to be placed: not twice
        if entry != self.earlier.get(item.instance_id) and \
                self._journaled.pop(item.instance_id, None) != entry:
            self._journal_append(item.instance_id, entry)

    def _journal_append(self, instance_id: str, entry: dict[str, Any]) -> None:
        if self.journal is None:
            return
        line = json.dumps({"id": instance_id, "entry": entry}, separators=(",", ":"))
        with self._journal_lock:  # workers journal what they are about to place
            self._journal_write(line)

    def _journal_write(self, line: str) -> None:
        if self.journal is None:  # given up by another thread meanwhile
            return
        try:
            if self._journal_fd is None:
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                self._journal_fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT
                                           | os.O_APPEND, 0o644)
            os.write(self._journal_fd, (line + "\n").encode())
        except OSError:
            self.journal = None  # it only covers a kill; the lock is written at the end

    def flush(self, *, complete: bool = False) -> bool:
        """Write the lock file from the entries so far (and drop the journal); True when
        its content changed. Entries equal to the file's (a no-op run, however large)
        leave it alone without rendering it."""
        self.entries = dict(self.finished) if complete else \
            merge_entries(self.earlier, self.finished)
        written = False
        if self.entries != self._on_disk and (self.entries or self.path.exists()):
            written = write_lock(self.path, self._recipe_name, self.entries, self._provider,
                                 memo=self._memo)
            self._on_disk = self.entries
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        if self.journal is not None:
            self.journal.unlink(missing_ok=True)
        return written


def write_stamp(plan: Plan, result: RunResult, options: RunOptions, *, cache: Cache,
                inputs: list[str], lock_file: Path, output_dir: Path,
                concurrency: int) -> None:
    """Record what this successful run depended on, for the next unchanged re-run."""
    recipe = plan.recipe
    stamp = Stamp(recipe_sha256=recipe.digest, base=recipe.folder.resolve())
    stamp.record(lock_file)
    for read in recipe.read_files:  # local catalog entries: what the recipe means
        stamp.record(read)
    for folder in recipe.read_folders:
        stamp.record_folder(folder)
    for vars_file in options.vars_files:
        stamp.record(vars_file.resolve())
    for input_path in inputs:
        stamp.record(input_path)
    order = {instance.id: n for n, instance in enumerate(plan.instances)}
    for item in sorted(result.results, key=lambda r: order.get(r.instance_id, 0)):
        if item.status not in ("ok", "cached") or not item.key:
            return  # skipped instances need their condition evaluated: no stamp
        stamp.record(cache.result_file(item.key), sha256=cache.entry_sha256(item.key))
        for artifact in item.artifacts:  # what a run's lookup checks: there, of its size
            stamp.record(cache.object_file(artifact["sha256"]), size_only=True)
        for saved, artifact in zip(item.saved, item.artifacts, strict=False):
            stamp.record(output_dir / saved, sha256=artifact["sha256"], object_of=True)
        stamp.instances.append({"id": item.instance_id, "step": item.step_id,
                                "endpoint": item.endpoint, "key": item.key,
                                "credits": item.credits, "unit": item.unit,
                                **({"credits_estimated": True}
                                   if item.credits_estimated else {})})
    # relative to the recipe's folder (as `files`): a later unchanged run, in this clone
    # or another, shows them relative to its own working directory
    stamp.summary = {"output_dir": stamp.key(str(output_dir)),
                     "lock": stamp.key(str(lock_file)) if result.lock_path else None,
                     "gallery": stamp.key(str(output_dir / "index.html"))
                     if result.gallery else None, "concurrency": concurrency,
                     "unit": result.unit}
    try:
        stamp.write(stamp_file(cache.root, recipe.path, options.stamp_context(recipe.path)))
    except OSError:
        pass  # a stamp only saves time; a run never fails for want of one


def write_kit_gallery(plan: Plan, entries: dict[str, dict[str, Any]], output_dir: Path, *,
                      lock_name: str,
                      dimensions: dict[str, tuple[Any, Any]] | None = None) -> str | None:
    """Write `index.html`: the whole kit as the lock file records it, step by step (entries
    of instances the recipe no longer makes too, so the page shows every file the lock
    file records). A card made by the emulator says so.

    Returns its path for display, or None when nothing was saved or it cannot be written.
    """
    from .gallery import render_gallery, write_gallery

    recipe = plan.recipe
    place = _Place(root=os.path.realpath(output_dir) + os.sep,
                   folder=os.path.realpath(recipe.folder), dimensions=dimensions,
                   default_unit=CREDIT_UNITS.get(recipe.default_provider.kind, "credits"))
    sections, shown = _step_sections(plan, entries, place)
    # instances the recipe no longer makes (another --var, a changed matrix): still on disk
    former = _former_section(plan, entries, shown, place)
    if former.cards:
        sections.append(former)
    files = sum(len(c.assets) for s in sections for c in s.cards)
    if not files:
        return None
    page = render_gallery(recipe.name, recipe.description,
                          _gallery_header(sections, files, lock_name), sections)
    try:
        return display(write_gallery(output_dir, page))
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class _Place:
    """Where the gallery's files are: the output folder (``root``, with a trailing
    separator) and the recipe's folder, as real paths; plus the pixel sizes known by
    sha256 and the default provider's credit unit."""

    root: str
    folder: str
    dimensions: dict[str, tuple[Any, Any]] | None
    default_unit: str


def _step_sections(plan: Plan, entries: dict[str, dict[str, Any]], place: _Place
                   ) -> tuple[list[Section], set[str]]:
    """The gallery's section of each step, in run order, with a card for each of its
    instances the lock file records; and the ids of those instances."""
    from .gallery import Section

    saved: dict[str, list[str]] = {}  # step → its files, relative to the output folder
    sections: list[Section] = []
    shown: set[str] = set()
    for step_id in plan.step_order:
        step = plan.recipe.steps[step_id]
        section = Section(step_id, step.description)
        for instance in plan.by_step[step_id]:
            entry = entries.get(instance.id)
            if entry is None:
                continue
            shown.add(instance.id)
            assets = _assets(entry, place)
            saved.setdefault(step_id, []).extend(a.file for a in assets)
            section.cards.append(_instance_card(plan, step, instance, entry, assets, saved,
                                                place))
        sections.append(section)
    return sections, shown


def _instance_card(plan: Plan, step: Step, instance: Instance, entry: dict[str, Any],
                   assets: list[Asset], saved: dict[str, list[str]], place: _Place) -> Card:
    """The card of an instance the recipe makes: its files (or, saving none, the files it
    was given) and the first file of each earlier step its templates read files of."""
    from .gallery import Card

    endpoint = step.endpoint
    references = _references(plan, step, instance, place) if not assets else []
    made_from = [f for dep in plan.depends_on[step.id] for f in saved.get(dep, [])[:1]
                 if any(ref[:3] == ("steps", dep, "files")
                        for _, t in step.templates for ref in t.refs)]
    outputs = {k: v for k, v in entry.get("outputs", {}).items()
               if k == "style_id"}
    return Card(
        instance.id, step.id, str(entry.get("endpoint", step.uses)),
        _badge(entry, endpoint), assets=assets, references=references,
        made_from=made_from, credits=float(entry.get("credits") or 0),
        credits_estimated=bool(entry.get("credits_estimated")), unit=_unit(endpoint, place),
        matrix=instance.matrix, params=entry.get("params", {}), outputs=outputs)


def _references(plan: Plan, step: Step, instance: Instance, place: _Place) -> list[str]:
    """The local files an instance's parameters name for its endpoint's uploads, relative
    to the output folder (values still templates or URLs are left out)."""
    from ..run.planning import known_params

    endpoint = step.endpoint
    references: list[str] = []
    if endpoint is not None and endpoint.files:
        known = known_params(plan, instance.matrix, step.params)
        for name in endpoint.files:
            values = known.get(name)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and "{{" not in value and \
                        "://" not in value:
                    references.append(os.path.relpath(plan.recipe.folder / value,
                                                      place.root.rstrip(os.sep)))
    return references


def _former_section(plan: Plan, entries: dict[str, dict[str, Any]], shown: set[str],
                    place: _Place) -> Section:
    """The section of the lock file's entries the recipe as it is now does not make."""
    from .gallery import Card, Section

    # a name no step id can have (ids have no hyphens): no clash with a step
    former = Section("earlier-runs", "recorded by an earlier run; not made by the recipe "
                                     "as it is now")
    for name in sorted(set(entries) - shown):
        entry = entries[name]
        former_step = plan.recipe.steps.get(str(entry.get("step")))
        endpoint = former_step.endpoint if former_step is not None else None
        former.cards.append(Card(
            name, str(entry.get("step")), str(entry.get("endpoint")), _badge(entry, endpoint),
            assets=_assets(entry, place), references=[], made_from=[],
            credits=float(entry.get("credits") or 0),
            credits_estimated=bool(entry.get("credits_estimated")),
            unit=_unit(endpoint, place), matrix={}, params=entry.get("params", {}),
            outputs={}))
    return former


def _assets(entry: dict[str, Any], place: _Place) -> list[Asset]:
    """The files a lock entry records inside the output folder, with their sizes and
    posters (paths relative to the output folder)."""
    from .gallery import Asset, picture_size

    assets: list[Asset] = []
    root, folder = place.root, place.folder
    posters = [str(a["path"]) for a in entry.get("artifacts", [])
               if a.get("role") == "poster" and a.get("path")]
    for artifact in entry.get("artifacts", []):
        if not artifact.get("path") or artifact.get("role") == "poster":
            continue
        # string paths: this runs for every file of the kit (pathlib costs 10x more)
        target = os.path.normpath(os.path.join(folder, str(artifact["path"])))
        if not target.startswith(root):
            continue
        known = (place.dimensions or {}).get(str(artifact.get("sha256")))
        width, height = known if known and all(known) else picture_size(Path(target))
        poster = posters[len(assets)] if len(assets) < len(posters) else None
        if poster is not None:
            poster = os.path.normpath(os.path.join(folder, poster))
            poster = poster[len(root):].replace(os.sep, "/") \
                if poster.startswith(root) else None
        assets.append(Asset(target[len(root):].replace(os.sep, "/"),
                            int(artifact.get("bytes", 0)), width, height, poster=poster))
    return assets


def _badge(entry: dict[str, Any], endpoint: Endpoint | None) -> str:
    """How a card says its files were made: local, mock (by the emulator) or called."""
    return "local" if endpoint is not None and endpoint.local else \
        "mock" if entry.get("emulated") else "called"


def _unit(endpoint: Endpoint | None, place: _Place) -> str:
    """The credit unit of a card: its endpoint's, else the default provider's."""
    return endpoint.unit if endpoint is not None and not endpoint.local else \
        place.default_unit


def _gallery_header(sections: list[Section], files: int, lock_name: str) -> str:
    """The line atop the gallery: how many files, instances and steps, and how many of
    them the emulator made."""
    instances = sum(len(s.cards) for s in sections)
    emulated = sum(1 for s in sections for c in s.cards if c.badge == "mock")
    return (f"{files} asset{'s' * (files != 1)} from {instances} instances of "
            f"{len([s for s in sections if s.cards])} steps, as recorded in {lock_name}"
            + (" · made by the emulator (--mock), not by the providers"
               if emulated and emulated == instances else
               f" · {emulated} made by the emulator (--mock), not by the providers"
               if emulated else ""))
