"""What a command was asked to do, as plain values (no CLI objects), and the one rule for
where a recipe's cache lives."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__


def cache_root_for(recipe: Path, cache_dir: Path | None) -> Path:
    """The cache of ``recipe``: ``cache_dir`` (--cache-dir / FLOW_CACHE_DIR) when given,
    else `.flow/cache` beside the recipe, whatever the working directory."""
    return cache_dir.resolve() if cache_dir else recipe.resolve().parent / ".flow" / "cache"


def display(path: Path | str) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(Path(path).resolve())


@dataclass(frozen=True, slots=True)
class Shard:
    """`--shard I/N`: this machine makes the calls whose cache key falls in part I of N.

    By key, not by position: adding an instance to a recipe moves no other to another shard.
    """

    index: int  # 1 … count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Raises: UsageError: not `I/N` with 1 ≤ I ≤ N."""
        index, _, count = text.partition("/")
        if index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count):
            return cls(int(index), int(count))
        from ..errors import UsageError

        raise UsageError(f"--shard {text}: expected I/N with 1 ≤ I ≤ N",
                         hint="for example --shard 1/3, --shard 2/3 and --shard 3/3 on three "
                              "machines")

    def owns(self, key: str) -> bool:
        return int(key[:16], 16) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `flow run` was asked to do."""

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
    mock_latency: float = 0.0  # with --mock: the emulator's latency and faults
    mock_faults: tuple[str, ...] = ()
    remote_cache: str | None = None  # --remote-cache / FLOW_REMOTE_CACHE
    remote_mode: str = "write"  # --remote-cache-mode: "write" or "read"
    shard: Shard | None = None
    link: str = "copy"  # --link / FLOW_CACHE_LINK: saved files are copies or hard links
    # variables as values (the Python API's `vars=`), over --var and --vars-file
    var_values: tuple[tuple[str, Any], ...] = ()

    def stamp_context(self, recipe: Path) -> dict[str, Any]:
        """The options that shape a run's result; a stamp is only valid for the same ones.
        Paths relative to the recipe's folder: the same in every clone."""
        folder = recipe.resolve().parent

        def relative(path: Path) -> str:
            return os.path.relpath(path.resolve(), folder).replace(os.sep, "/")

        values = [f"{name}={json.dumps(value, sort_keys=True, default=str)}"
                  for name, value in self.var_values]
        return {"flowrunner": __version__, "mock": self.mock,
                "vars": list(self.var_pairs) + values,
                "vars_files": [relative(p) for p in self.vars_files],
                "output_dir": relative(self.output_dir) if self.output_dir else None}

    @property
    def stamp_eligible(self) -> bool:
        """Whether an unchanged re-run may be recognised from its stamp alone."""
        return not (self.only or self.refresh or self.no_cache or self.dry_run
                    or self.verbosity or self.mock_faults or self.shard
                    # --frozen vouches for the remote cache too: it is asked, not skipped
                    or (self.frozen and self.remote_cache))
