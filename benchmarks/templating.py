"""Does the templating fast path earn its keep? Planning a matrix recipe renders every
instance's `with:` and `save:`; plain `{{ a.b }}` substitutions skip Jinja
(`recipe/templating.py`: `Template._render_simple`, checked against Jinja by
`tests/unit/test_templating.py::test_fast_path_matches_jinja`). This plans the same
recipe with the fast path and with Jinja alone, in alternating rounds, in one process.

    python benchmarks/templating.py                   # 50,000 instances, 3 rounds
    python benchmarks/templating.py --instances 100000 --rounds 5

Rule (issue 26): keep the fast path only if planning is at least 10 % faster with it.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import tempfile
import time
from pathlib import Path

from scale import make_recipe

from flowrunner.recipe import templating
from flowrunner.run.planning import load_plan


def plan_seconds(path: Path, *, fast: bool) -> float:
    original = templating.Template._render_simple
    if not fast:  # every template falls through to Jinja, as if the fast path were gone
        templating.Template._render_simple = lambda self, context: templating._UNSURE  # type: ignore[method-assign]
    try:
        gc.collect()
        started = time.process_time()
        load_plan(path)
        return time.process_time() - started
    finally:
        templating.Template._render_simple = original  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}, "
          f"{args.instances:,} instances, {args.rounds} rounds (CPU seconds of load_plan)")
    with tempfile.TemporaryDirectory() as folder:
        path = make_recipe(Path(folder), args.instances, "http://127.0.0.1:9")
        plan_seconds(path, fast=True)  # warm: imports, the catalog, compiled schemas
        fast, slow = [], []
        for _ in range(args.rounds):
            fast.append(plan_seconds(path, fast=True))
            slow.append(plan_seconds(path, fast=False))
    with_fast, jinja_only = statistics.median(fast), statistics.median(slow)
    print(f"  fast path:  {with_fast:.2f} s   Jinja only: {jinja_only:.2f} s   "
          f"gain: {(jinja_only - with_fast) / jinja_only:.0%}   "
          f"({'keep' if (jinja_only - with_fast) / jinja_only >= 0.10 else 'retire'})")


if __name__ == "__main__":
    main()
