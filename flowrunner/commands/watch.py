"""`flow watch`: run the recipe, serve its gallery live on 127.0.0.1, and run again whenever a
file in the recipe's folder is saved (the recipe, its vars files, local catalog entries,
input images). The cache makes unchanged instances free; the open page refreshes itself
with the new cards highlighted, and shows a problem with its file:line:col.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, TextIO

from ..errors import FlowError, Interrupted, SpecError, UsageError, format_issues
from ..kit.livegallery import LiveGallery
from ..run.options import RunOptions

_SKIPPED = {".flow", ".git", "__pycache__", "node_modules"}


def watch_recipe(path: Path, *, options: RunOptions, port: int, budget: float | None,
                 out: TextIO, err: TextIO, interval: float = 0.3) -> int:
    """Run, serve, and run again on every save until Ctrl-C (then 130).

    Raises:
        UsageError: the port cannot be used.
    """
    import threading

    folder = path.resolve().parent
    session = _Session(path, options, budget, out, err)
    try:
        server = LiveGallery(folder, session.page, port)
    except OSError as exc:
        raise UsageError(f"--port {port}: {exc.strerror or exc}",
                         hint="pick another port with --port, or stop what uses it") from None
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name="flow-watch", daemon=True).start()
    session.server = server
    try:
        session.run()
        out.write(f"watching {path}: gallery at {server.url} (Ctrl-C stops)\n")
        out.flush()
        seen = _snapshot(folder, session.ignored())
        while True:
            time.sleep(interval)
            now = _snapshot(folder, session.ignored())
            if now != seen:
                changed = sorted(set(now.items()) ^ set(seen.items()))
                out.write(f"\nchanged: {', '.join(sorted({name for name, _ in changed})[:5])}\n")
                session.run()
                # against what this run started from: a save made while it ran is news
                seen = {name: stamp for name, stamp in now.items()
                        if not session.written(folder / name)}
    except (KeyboardInterrupt, Interrupted):
        out.write("\nstopped watching\n")
        return 130
    finally:
        server.close()


class _Session:
    """The runs of one `flow watch`: their count, the credits they spent against the
    session's budget, and where the gallery page is."""

    def __init__(self, path: Path, options: RunOptions, budget: float | None, out: TextIO,
                 err: TextIO) -> None:
        self.path, self.options, self.budget = path, options, budget
        self.out, self.err = out, err
        self.spent = 0.0
        self.runs = 0
        self.page = path.resolve().parent / "index.html"  # until a run writes the gallery
        self.output: Path | None = None  # the output folder, once a run named it
        self.lock = path.resolve().with_suffix(".lock")
        self.server: LiveGallery | None = None

    def ignored(self) -> set[Path]:
        """What runs write: the output folder and the lock file."""
        return {self.lock} | ({self.output} if self.output is not None else set())

    def written(self, path: Path) -> bool:
        """Whether a run writes ``path`` (the snapshot leaves it out)."""
        return any(path == p or path.is_relative_to(p) for p in self.ignored())

    def run(self) -> None:
        from .run import execute_run

        self.runs += 1
        self._send("running", {"run": self.runs})
        options = self.options
        if self.budget is not None:  # what is left of the session's budget, within the recipe's
            left = max(0.0, self.budget - self.spent)
            options = dataclasses.replace(options, max_credits=min(left, _recipe_budget(
                self.path)))
        try:
            result = execute_run(self.path, options=options, stream=self.out)
        except Interrupted:
            raise
        except FlowError as exc:
            self._problem(exc)
            return
        if not options.mock:
            self.spent += result.credits_spent
        if result.output_dir:
            self.output = Path(result.output_dir).resolve()
        folder = self.path.resolve().parent
        if self.output is not None and not self.output.is_relative_to(folder):
            self._problem(FlowError(f"the output folder {self.output} is outside the recipe's "
                                    "folder: flow watch serves only the recipe's folder",
                                    hint="set output_dir to a folder beside the recipe"))
            return
        if result.gallery:
            self.page = Path(result.gallery).resolve()
            if self.server is not None:
                self.server.page = self.page
        changed = [item.instance_id for item in result.results if item.status == "ok"]
        page = "/" + self.page.relative_to(folder).as_posix()
        self._send("updated", {"changed": changed, "run": self.runs, "ok": result.ok,
                               "page": page})

    def _problem(self, exc: FlowError) -> None:
        if isinstance(exc, SpecError) and exc.issues:
            text = format_issues(exc.issues)
            first = exc.issues[0].format()
        else:
            text = first = f"flow: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint
                                                     else "")
        self.err.write(text + "\n")
        self.err.flush()
        self._send("problem", {"message": first, "hint": None if isinstance(exc, SpecError)
                                else exc.hint})

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        if self.server is not None:
            self.server.events.send(kind, data)


def _snapshot(folder: Path, ignored: set[Path]) -> dict[str, tuple[int, int]]:
    """(modification time, size) of every file under the folder, but dot-folders, the
    cache and what runs write."""
    found: dict[str, tuple[int, int]] = {}
    skip = {str(p.resolve()) for p in ignored}
    for root, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if f not in _SKIPPED and not f.startswith(".")
                      and os.path.join(root, f) not in skip]
        for name in files:
            full = os.path.join(root, name)
            if full in skip or name.startswith("."):
                continue
            try:
                info = os.stat(full)
            except OSError:
                continue
            found[os.path.relpath(full, folder)] = (info.st_mtime_ns, info.st_size)
    return found


def _recipe_budget(path: Path) -> float:
    """The recipe's own `budget:` (no limit when it has none or cannot be read: the run
    itself then says what is wrong)."""
    from ..run.planning import load_plan

    try:
        budget = load_plan(path).recipe.budget
    except FlowError:
        return float("inf")
    return float("inf") if budget is None else float(budget)
