"""`flow diff RECIPE [--base REF]`: what changed against a git base — instances added,
removed or changed and why — on the terminal, as JSON lines, in `<output_dir>/diff.html`
(before and after side by side) and, under GitHub Actions, in the job's step summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from ..catalog.entries import CREDIT_UNITS
from ..errors import SpecError
from ..kit.diffing import Change, changed_variables, compare
from ..kit.diffpage import ChangeView, PairView, Side, render_diff_page
from ..kit.gitrev import Revision
from ..kit.lockfile import LockFile, invalid_lines, lock_path_for, parse_lock, read_lock
from ..media.formats import EXTENSIONS, sniff
from ..media.imaging import difference
from ..recipe.graph import Plan
from ..recipe.source import parse_text
from ..records import is_sha256
from ..run.options import cache_root_for, display
from ..run.planning import load_plan
from ..run.survey import survey_plan
from ..store.cache import Cache

MAX_INLINE_BYTES = 8 * 1024 * 1024
_MEDIA_BY_EXT = {ext: media for media, ext in EXTENSIONS.items()}


def show_diff(path: Path, *, base: str, var_overrides: dict[str, Any],
              cache_dir: Path | None, against_plan: bool, as_json: bool, exit_code: bool,
              output_dir: Path | None, out: TextIO) -> int:
    """`flow diff`: 0, or 1 with ``exit_code`` when anything changed.

    Raises:
        UsageError: not in a git repository, or no such revision.
        SpecError: the recipe is invalid.
    """
    plan = load_plan(path, var_overrides=var_overrides)
    recipe = plan.recipe
    revision = Revision(recipe.path, base)
    lock_file = lock_path_for(recipe.path)
    base_lock = _lock_from(revision.read(lock_file), str(lock_file))
    cache = Cache(cache_root_for(recipe.path, cache_dir), writable=False)
    if against_plan:
        current = _planned(plan, cache)
    else:
        lock = read_lock(lock_file)
        _warn_invalid(lock, display(lock_file))
        current = lock.instances
    base_vars = _vars_from(revision.read(recipe.path))
    changes = compare(base_lock, current, plan=plan,
                      variables=changed_variables(base_vars, recipe.vars))
    folder = output_dir.resolve() if output_dir else recipe.output_dir
    page = _write_page(plan, changes, revision=revision, cache=cache, folder=folder)
    if as_json:
        for change in changes:
            out.write(json.dumps(change.to_json(), sort_keys=True) + "\n")
    else:
        _print(changes, out)
        counts = {kind: sum(1 for c in changes if c.kind == kind)
                  for kind in ("changed", "added", "removed")}
        out.write(f"{counts['changed']} changed, {counts['added']} added, {counts['removed']} "
                  f"removed against {base} ({revision.short})"
                  + (f" · {display(page)}" if page else "") + "\n")
    _step_summary(recipe.display, base, changes,
                  unit=CREDIT_UNITS.get(recipe.default_provider.kind, "credits"))
    return 1 if exit_code and changes else 0


def _lock_from(raw: bytes | None, name: str) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    try:
        data, _ = parse_text(raw.decode("utf-8"), name)
    except (SpecError, UnicodeDecodeError):  # a broken base lock reads as empty
        return {}
    lock = parse_lock(data)
    _warn_invalid(lock, f"{name} at the base")
    return lock.instances


def _warn_invalid(lock: LockFile, name: str) -> None:
    for line in invalid_lines(lock, name):
        sys.stderr.write(f"flow: warning: {line}\n")


def _vars_from(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        data, _ = parse_text(raw.decode("utf-8"), "base recipe")
    except (SpecError, UnicodeDecodeError):  # it only loses the variables' attribution
        return {}
    found = data.get("vars") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def _planned(plan: Plan, cache: Cache) -> dict[str, dict[str, Any]]:
    """What a run would make now: each instance's key and parameters (and its files, when
    the cache already has them)."""
    entries: dict[str, dict[str, Any]] = {}
    for item in survey_plan(plan, cache=cache, mock=False):
        if item.call is None:
            continue
        step = item.instance.step
        artifacts = [{"sha256": a["sha256"], "bytes": a["bytes"]}
                     for a in (item.entry or {}).get("artifacts", [])]
        estimate = step.endpoint.estimate_credits(item.call.params) if step.endpoint else 0
        entries[item.instance.id] = {
            "step": step.id, "endpoint": step.uses, "key": item.call.key,
            "params": item.call.material["params"], "artifacts": artifacts,
            "credits": float((item.entry or {}).get("credits") or 0) if item.entry
            else estimate}
    return entries


def _print(changes: list[Change], out: TextIO) -> None:
    width = max((len(c.instance) for c in changes), default=10)
    for change in changes:
        why = "; ".join(change.reasons)
        if change.variables:
            why += ("  (" if why else "(") + "; ".join(change.variables) + ")"
        out.write(f"{change.kind:<8} {change.instance:<{width}}  {why}".rstrip() + "\n")


def _side(label: str, artifact: dict[str, Any] | None, *, revision: Revision | None,
          cache: Cache, recipe_folder: Path) -> Side:
    if artifact is None:
        return Side(label, missing="none (the instance did not exist)")
    name = str(artifact.get("path") or str(artifact.get("sha256", ""))[:12])
    sha = artifact.get("sha256")
    if not is_sha256(sha):
        # only bytes that match a real sha256 are ever shown: a lock entry can never make
        # this page carry a file nobody recorded (`flow diff` runs on pull requests)
        return Side(label, name, missing="the lock entry has no valid sha256")
    data: bytes | None = None
    source = cache.object_path(sha)
    if source.is_file() and source.stat().st_size <= MAX_INLINE_BYTES:
        data = source.read_bytes()
    elif artifact.get("path"):
        target = recipe_folder / str(artifact["path"])
        if revision is not None:
            data = revision.read(target)
        elif target.is_file() and target.stat().st_size <= MAX_INLINE_BYTES:
            data = target.read_bytes()
    if data is None or len(data) > MAX_INLINE_BYTES:
        return Side(label, name, missing="not in the cache, and not committed at the base: "
                                         "run `flow run` on the base to see it")
    import hashlib

    if hashlib.sha256(data).hexdigest() != sha:
        return Side(label, name, missing="the stored file does not match the lock's sha256")
    media = sniff(data[:4096]) or _MEDIA_BY_EXT.get(name.rsplit(".", 1)[-1], "image/png")
    return Side(label, name, data=data, media_type=media)


def _write_page(plan: Plan, changes: list[Change], *, revision: Revision, cache: Cache,
                folder: Path) -> Path | None:
    from ..store.cache import atomic_write_bytes

    recipe = plan.recipe
    views = []
    for change in changes:
        view = ChangeView(change.instance, change.kind, change.endpoint,
                          reasons=list(change.reasons), variables=list(change.variables))
        for position in range(max(len(change.before), len(change.after))):
            old = change.before[position] if position < len(change.before) else None
            new = change.after[position] if position < len(change.after) else None
            pair = PairView(_side("before", old, revision=revision, cache=cache,
                                  recipe_folder=recipe.folder),
                            _side("after", new, revision=None, cache=cache,
                                  recipe_folder=recipe.folder))
            if pair.before.data is not None and pair.after.data is not None:
                found = difference(pair.before.data, pair.after.data)
                if found is not None:
                    pair.difference, pair.share = found
            view.pairs.append(pair)
        views.append(view)
    gallery = "index.html" if (folder / "index.html").is_file() else None
    page = render_diff_page(recipe.name, f"{revision.ref} ({revision.short})", views,
                            gallery=gallery)
    target = folder / "diff.html"
    try:
        atomic_write_bytes(target, page.encode())
    except OSError:
        return None
    return target


def _step_summary(recipe: str, base: str, changes: list[Change], *, unit: str) -> None:
    """Under GitHub Actions, the changes as Markdown in the job's summary."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target or os.environ.get("GITHUB_ACTIONS") != "true":
        return
    cost = sum(c.credits for c in changes if c.kind != "removed")
    lines = [f"### flow diff `{recipe}` against `{base}`", "",
             f"{len(changes)} instance(s) differ · the change costs ~{cost:g} {unit}", ""]
    if changes:
        lines += ["| instance | change | why |", "| --- | --- | --- |"]
        for change in changes:
            why = "; ".join(change.reasons + change.variables).replace("|", "\\|")
            lines.append(f"| `{change.instance}` | {change.kind} | {why[:300]} |")
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    except OSError:
        pass  # a summary is a courtesy; never fail over it
