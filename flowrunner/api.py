"""The Python API: what `flow validate`, `flow plan` and `flow run` do, for notebooks and
scripts. The command line is a thin layer over the same functions.

    import flowrunner

    recipe = flowrunner.load("brand_assets.yaml", vars={"brand": "Globex"})
    recipe.validate()                       # raises flowrunner.SpecError, located
    for item in recipe.plan(mock=True).instances:
        print(item.instance, item.state, item.credits)
    result = recipe.run(mock=True, only=["logo"], on_event=print)
    print(result.ok, result.credits_spent, [r.saved for r in result.results])

Errors are the command line's, as exceptions with the same messages, locations (`.issues`
of a `SpecError`) and hints; `exit_code` says what `flow` would exit with. A run whose
instances fail returns normally: its result says which (`result.ok`, `result.failed`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import FlowError, Issue
from .run.options import RunOptions
from .run.reporting import RunEvent
from .run.results import RunResult, StepResult


@dataclass(frozen=True, slots=True)
class PlannedInstance:
    """One instance in the plan: what it calls, its cache state and its credits."""

    instance: str
    step: str
    endpoint: str
    state: str  # cached, missing, blocked, skipped, error, unknown
    credits: float  # spent (cached), or estimated (to call)
    unit: str
    needs: tuple[str, ...]  # the steps it waits for
    params: Mapping[str, Any]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """`flow plan` as values: the instances in run order and what calling the rest costs."""

    recipe: str
    instances: tuple[PlannedInstance, ...]
    estimated_credits: Mapping[str, float] = field(default_factory=dict)  # unit → credits

    @property
    def to_call(self) -> int:
        return sum(i.state in ("missing", "blocked", "unknown", "error") for i in self.instances)

    @property
    def cached(self) -> int:
        return sum(i.state == "cached" for i in self.instances)


class RecipeFile:
    """A recipe on disk, with the variables to run it with. Made by `load`."""

    def __init__(self, path: Path, *, vars: Mapping[str, Any] | None = None,
                 vars_files: Iterable[str | Path] = (), cache_dir: str | Path | None = None):
        self.path = Path(path)
        self.vars = dict(vars or {})
        self.vars_files = tuple(Path(p) for p in vars_files)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    def __repr__(self) -> str:
        return f"flowrunner.load({str(self.path)!r})"

    @property
    def lock_file(self) -> Path:
        """`<recipe-stem>.lock` beside the recipe."""
        from .kit.lockfile import lock_path_for

        return lock_path_for(self.path.resolve())

    @property
    def cache_root(self) -> Path:
        """Where the recipe's cache is: `cache_dir`, else `.flow/cache` beside it."""
        from .run.options import cache_root_for

        return cache_root_for(self.path, self.cache_dir)

    @property
    def output_dir(self) -> Path:
        """The folder its assets, gallery and review page go to (its `output_dir`).

        Raises:
            SpecError: the recipe is invalid.
        """
        from .run.planning import load_plan

        return Path(load_plan(self.path, var_overrides=self._overrides()).recipe.output_dir)

    def _overrides(self, more: Mapping[str, Any] | None = None) -> dict[str, Any]:
        from .recipe.spec import parse_var_overrides

        overrides = parse_var_overrides([], list(self.vars_files))
        overrides.update(self.vars)
        overrides.update(more or {})
        return overrides

    def validate(self) -> list[Issue]:
        """Check the recipe without calling anything. Returns its warnings (a model that
        shuts down soon).

        Raises:
            SpecError: the recipe is invalid (`.issues`: every problem, located).
        """
        from .run.planning import load_plan

        return list(load_plan(self.path, var_overrides=self._overrides()).warnings)

    def plan(self, *, mock: bool = False) -> PlanSummary:
        """What a run would do: each instance's cache state and credits. Calls nothing."""
        from .commands.plan import plan_rows

        plan, rows, _unit = plan_rows(self.path, var_overrides=self._overrides(),
                                      cache_dir=self.cache_dir, mock=mock)
        instances = tuple(PlannedInstance(
            instance=row["instance"], step=row["step"], endpoint=row["endpoint"],
            state=row["state"], credits=float(row["credits"] or 0), unit=row["unit"],
            needs=tuple(row["needs"]), params=row["params"], error=row["error"])
            for row in rows)
        estimate: dict[str, float] = {}
        for item in instances:
            if item.state in ("missing", "blocked", "unknown"):
                estimate[item.unit] = estimate.get(item.unit, 0.0) + item.credits
        return PlanSummary(plan.recipe.display, instances, estimate)

    def run(self, *, mock: bool = False, only: Iterable[str] = (),
            refresh: Iterable[str] = (), vars: Mapping[str, Any] | None = None,
            on_event: Callable[[RunEvent], None] | None = None,
            concurrency: int | None = None, max_credits: float | None = None,
            dry_run: bool = False, frozen: bool = False, no_cache: bool = False,
            output_dir: str | Path | None = None) -> RunResult:
        """Run the recipe as `flow run` does (the cache, the lock file, the gallery).

        ``on_event`` receives each `RunEvent` as it happens, one at a time, from the run's
        worker threads; without it the run prints nothing. If ``on_event`` raises, it
        hears nothing more, the run finishes (lock file and gallery written: calls already
        paid for are kept) and its exception is raised then.

        Raises:
            SpecError, UsageError, FrozenError, BudgetExceeded, Interrupted (Ctrl-C).
        """
        from .commands.run import execute_run

        options = RunOptions(
            var_pairs=(), vars_files=(), only=tuple(only), refresh=tuple(refresh),
            no_cache=no_cache, frozen=frozen, dry_run=dry_run, concurrency=concurrency,
            output_dir=Path(output_dir) if output_dir is not None else None,
            cache_dir=self.cache_dir, mock=mock, max_credits=max_credits,
            var_values=tuple(self._overrides(vars).items()))
        failed: list[BaseException] = []

        def listener(event: RunEvent) -> None:
            if on_event is None or failed:
                return
            try:
                on_event(event)
            except Exception as exc:  # noqa: BLE001 - the caller's: raised once the run is whole
                failed.append(exc)

        result: RunResult = execute_run(self.path, options=options, stream=io.StringIO(),
                                        listener=listener)
        if failed:
            raise failed[0]
        return result


def load(path: str | Path, *, vars: Mapping[str, Any] | None = None,
         vars_files: Iterable[str | Path] = (), cache_dir: str | Path | None = None
         ) -> RecipeFile:
    """The recipe at ``path``, to validate, plan or run with ``vars`` (over its own
    `vars:` and those of ``vars_files``, as `--var` and `--vars-file` do).

    Raises:
        UsageError: ``path`` is not a file.
    """
    from .errors import UsageError

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such recipe file",
                         hint="give the path of a recipe YAML file")
    return RecipeFile(Path(path), vars=vars, vars_files=vars_files, cache_dir=cache_dir)


__all__ = ["FlowError", "PlanSummary", "PlannedInstance", "RecipeFile", "RunEvent",
           "RunResult", "StepResult", "load"]
