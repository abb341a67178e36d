"""flowrunner: declarative workflows for generative-media APIs.

Recipes are YAML files whose steps call endpoints (Recraft through the ElkAPI gateway first)
with Jinja-templated parameters; `flow` validates, plans, runs, caches and locks them.

Where things live (each subpackage's docstring says what it owns and what it may import;
tests/unit/test_layers.py holds every module to it):

- the leaves, which everything may use: `errors` the exception hierarchy · `_json`
  canonical JSON · `workers` the run's daemon worker threads · `cancellation` the run's one
  Ctrl-C signal, which ends every wait · `records` checks of records read back from a store
  · `limits` size limits
- `store/` the cache on disk, its keys, the shared cache and the object store behind it
- `net/` the HTTP client, providers and their keys, proxies, pacing, read deadlines
- `catalog/` the endpoint entries, models with a lifecycle (current, deprecated, gone,
  retired), the shipped schemas
- `media/` what a file is and whether it is whole; Pillow operations
- `recipe/` YAML with positions, the recipe model, schema checks, templates, the step graph
- `call/` one step instance's call, from its template context to the stored files
- `run/` planning, what the cache has, the scheduler, budget, results, reporting
- `kit/` the lock file, stamps, the gallery, and comparing runs (diff, review page)
- `commands/` one module per subcommand · `cli` the command line · `api` the Python API
  (`flowrunner.load`), over the same functions
- `emulator/` the providers' stand-in (imports nothing of the run, nor the catalog)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (hatch), `flow --version` too

if TYPE_CHECKING:
    from .api import PlannedInstance, PlanSummary, RecipeFile, RunEvent, load
    from .errors import (
        BudgetExceeded,
        FlowError,
        FrozenError,
        Interrupted,
        SpecError,
        UsageError,
    )
    from .run.results import RunResult, StepResult

_PUBLIC = {"load": "api", "RecipeFile": "api", "PlanSummary": "api",
           "PlannedInstance": "api", "RunEvent": "api", "RunResult": "run.results",
           "StepResult": "run.results", "FlowError": "errors", "SpecError": "errors",
           "UsageError": "errors", "FrozenError": "errors", "BudgetExceeded": "errors",
           "Interrupted": "errors"}

__all__ = ["BudgetExceeded", "FlowError", "FrozenError", "Interrupted", "PlanSummary",
           "PlannedInstance", "RecipeFile", "RunEvent", "RunResult", "SpecError",
           "StepResult", "UsageError", "__version__", "load"]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use: `flow`'s no-op path imports this package
    and must stay light."""
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'flowrunner' has no attribute {name!r}")
