"""`flow run`'s entry: recognise an unchanged re-run from its stamp, else run the executor.

Kept light on purpose: a no-op re-run of a large recipe reads one stamp and stats some
files, and never imports the parser, the templating, the schemas or the HTTP stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .stamp import read_fresh_stamp, stamp_file


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `flow run` was asked to do, as plain values (no CLI objects)."""

    var_pairs: tuple[str, ...] = ()
    vars_files: tuple[Path, ...] = ()
    only: tuple[str, ...] = ()
    refresh: tuple[str, ...] = ()
    no_cache: bool = False
    frozen: bool = False
    dry_run: bool = False
    concurrency: int | None = None
    output_dir: Path | None = None
    cache_dir: Path | None = None
    as_json: bool = False
    mock: bool = False
    verbosity: int = 0
    allow_paths: tuple[Path, ...] = ()
    max_credits: float | None = None


def cache_root_for(recipe: Path, cache_dir: Path | None) -> Path:
    return cache_dir.resolve() if cache_dir else recipe.resolve().parent / ".flow" / "cache"


def stamp_context(options: RunOptions) -> dict[str, Any]:
    """The options that shape a run's result; a stamp is only valid for the same ones."""
    return {"flowrunner": __version__, "mock": options.mock,
            "vars": list(options.var_pairs),
            "vars_files": [str(p.resolve()) for p in options.vars_files],
            "output_dir": str(options.output_dir.resolve()) if options.output_dir else None}


def _quick_eligible(options: RunOptions) -> bool:
    return not (options.only or options.refresh or options.no_cache or options.dry_run
                or options.verbosity or os.environ.get("FLOW_NO_STAMP"))


def run_recipe(path: Path, *, options: RunOptions, stream: TextIO) -> int:
    """`flow run`. Returns 0 when every instance succeeded, 1 when some failed.

    Raises:
        SpecError (3), UsageError (2), FrozenError (4), Interrupted (130/143).
    """
    if _quick_eligible(options):
        target = stamp_file(cache_root_for(path, options.cache_dir), path,
                            stamp_context(options))
        stamp = read_fresh_stamp(target, path)
        if stamp is not None:
            return _report_unchanged(path, stamp, options, stream)
    from .execute import run_recipe_file

    return run_recipe_file(path, options=options, stream=stream)


def _report_unchanged(path: Path, stamp: Any, options: RunOptions, stream: TextIO) -> int:
    import time

    from .reporting import JsonReporter, TextReporter
    from .results import RunResult, StepResult

    started = time.monotonic()
    reporter = JsonReporter(stream) if options.as_json else TextReporter(stream)
    summary = stamp.summary
    reporter.run_started(str(path), len(stamp.instances),
                         options.concurrency or summary.get("concurrency", 1))
    result = RunResult(recipe=str(path), output_dir=summary.get("output_dir"),
                       lock_path=summary.get("lock"))
    for item in stamp.instances:
        step = StepResult(item["id"], item["step"], item["endpoint"], "cached",
                          key=item.get("key"), credits=float(item.get("credits", 0)))
        result.results.append(step)
        reporter.step_finished(step)
    result.elapsed = time.monotonic() - started
    reporter.run_finished(result)
    return 0
