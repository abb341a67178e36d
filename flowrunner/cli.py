"""The `flow` command line: parses options, calls one command function, maps errors to exit
statuses.

The only module that knows click and exit statuses. No logic lives here: each subcommand's
work is in `flowrunner/commands/<name>.py`, imported inside the command so `flow --help`
stays fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .emulator.faults import FAULT_HELP
from .errors import FlowError, SpecError, format_issues
from .run.crashlog import EXIT_CRASH, redact_secrets, write_crash_log

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_state = {"traceback": False}

_RECIPE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _out() -> Any:
    return sys.stdout


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="flow")
@click.option("--traceback", is_flag=True, hidden=False,
              help="Show the Python traceback of an unexpected error (for bug reports).")
def cli(traceback: bool) -> None:
    """flowrunner: run YAML recipes of generative-media API calls, cached and locked.

    \b
    Start here:
      flow run examples/brand_assets.yaml --mock   run against the bundled emulator
      flow validate recipes/*.yaml                 check recipes without calling anything
      flow endpoints                               list the endpoints a step can use
    """
    _state["traceback"] = traceback


def _var_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--vars-file", "vars_files", multiple=True,
                        type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        help="A YAML file of variable values; may be repeated.")(func)
    func = click.option("--var", "var_pairs", multiple=True, metavar="NAME=VALUE",
                        help="Override a recipe variable; VALUE is read as YAML "
                             "(so [a, b] is a list). May be repeated.")(func)
    return func


def _cache_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                        envvar="FLOW_CACHE_DIR", show_envvar=True,
                        help="Where the cache lives. Default: .flow/cache beside the recipe.")(func)


def _remote_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--remote-cache", "remote_cache", metavar="URL",
                        envvar="FLOW_REMOTE_CACHE", show_envvar=True,
                        help="A cache shared by machines: s3://BUCKET/PREFIX (endpoint from "
                             "AWS_ENDPOINT_URL, credentials from the AWS chain; needs the "
                             "`s3` extra) or file:///shared/folder. Read through, written "
                             "through.")(func)


def _overrides(var_pairs: tuple[str, ...], vars_files: tuple[Path, ...]) -> dict[str, Any]:
    from .recipe.spec import parse_var_overrides

    return parse_var_overrides(list(var_pairs), list(vars_files))


def _recipe_or_cache_dir(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                        envvar="FLOW_CACHE_DIR", show_envvar=True,
                        help="The cache folder. Default: the one `flow run RECIPE` uses "
                             "(.flow/cache beside the recipe); without a recipe, "
                             "./.flow/cache.")(func)
    return click.argument("recipe", required=False, type=_RECIPE)(func)


@cli.command()
@click.argument("recipe", type=_RECIPE)
@_var_options
@click.option("--only", multiple=True, metavar="STEP",
              help="Run only this step and what it needs; may be repeated.")
@click.option("--refresh", multiple=True, metavar="STEP",
              help="Call this step (and its dependents) again even if cached; may be repeated.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--frozen", is_flag=True,
              help="Fail with exit 4, making no request, if any step is not already cached "
                   "(for CI).")
@click.option("--dry-run", is_flag=True, help="Render and check every step; call nothing.")
@click.option("--concurrency", type=click.IntRange(1, 256),
              help="How many calls may run at once (overrides the recipe's `concurrency`).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write assets (overrides the recipe's `output_dir`).")
@_cache_option
@click.option("--max-credits", type=click.FloatRange(min=0), metavar="N",
              help="Refuse calls that would take this run past N credits, in the default "
                   "provider's unit (ElkAPI credits for the gateway, Recraft units, BFL "
                   "credits); overrides the recipe's `budget:`.")
@click.option("--allow-path", "allow_paths", multiple=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Also allow local input files below this folder (by default only the "
                   "recipe's folder); may be repeated.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per event (JSON lines) instead of text.")
@click.option("--mock", is_flag=True,
              help="Run against the bundled emulator on 127.0.0.1; no key, no network, no cost.")
@click.option("--latency", "mock_latency", type=click.FloatRange(min=0), metavar="SECONDS",
              help="With --mock: seconds each emulated call takes.")
@click.option("--fault", "mock_faults", multiple=True, metavar="KIND[:COUNT]",
              help=f"With --mock: inject a fault into the next COUNT matching requests: "
                   f"{FAULT_HELP}. May be repeated.")
@_remote_option
@click.option("--remote-cache-mode", "remote_mode", type=click.Choice(["write", "read"]),
              default="write", envvar="FLOW_REMOTE_CACHE_MODE", show_envvar=True,
              show_default=True,
              help="read: use the remote cache but never write to it, claims included "
                   "(pull-request jobs from forks).")
@click.option("--shard", metavar="I/N",
              help="Make only part I of N of the calls (split by cache key), with a remote "
                   "cache; writes no lock file, gallery or assets: a final `flow run "
                   "--frozen` assembles them.")
@click.option("--link", type=click.Choice(["copy", "hardlink"]), default="copy",
              envvar="FLOW_CACHE_LINK", show_envvar=True, show_default=True,
              help="hardlink: save files as hard links to the (then read-only) cache objects, "
                   "as DVC does: a fresh clone's restore writes no data. Do not edit saved "
                   "files in place then (flow notices a changed object and fetches it again).")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for HTTP details).")
def run(recipe: Path, var_pairs: tuple[str, ...], vars_files: tuple[Path, ...],
        only: tuple[str, ...], refresh: tuple[str, ...], no_cache: bool, frozen: bool,
        dry_run: bool, concurrency: int | None, output_dir: Path | None, cache_dir: Path | None,
        max_credits: float | None, allow_paths: tuple[Path, ...], as_json: bool, mock: bool,
        mock_latency: float | None, mock_faults: tuple[str, ...], remote_cache: str | None,
        remote_mode: str, shard: str | None, link: str, verbose: int) -> int:
    """Run a recipe: call what is not cached, write the assets and the lock file.

    \b
    Example:
      flow run examples/brand_assets.yaml --mock
      flow run brand.yaml --var brand=Acme --only logo
      flow run brand.yaml --frozen          # in CI: fail if anything would be called
      flow run brand.yaml --remote-cache s3://team-bucket/flow --shard 1/3
    """
    from .commands.run import run_recipe
    from .run.options import RunOptions, Shard

    options = RunOptions(
        var_pairs=var_pairs, vars_files=vars_files, only=only, refresh=refresh,
        no_cache=no_cache, frozen=frozen, dry_run=dry_run, concurrency=concurrency,
        output_dir=output_dir, cache_dir=cache_dir, as_json=as_json, mock=mock,
        verbosity=verbose, max_credits=max_credits, allow_paths=allow_paths,
        mock_latency=mock_latency or 0.0, mock_faults=mock_faults,
        remote_cache=remote_cache or None, remote_mode=remote_mode,
        shard=Shard.parse(shard) if shard else None, link=link)
    return run_recipe(recipe, options=options, stream=_out())


@cli.command()
@click.argument("recipe", type=_RECIPE)
@_var_options
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="The port on 127.0.0.1 the live gallery is served on.")
@click.option("--budget", type=click.FloatRange(min=0), metavar="N",
              help="The most credits the session's runs may spend together; a run that "
                   "would pass it calls nothing and says so on the page.")
@click.option("--mock", is_flag=True,
              help="Run against the built-in emulator: no API key, no cost.")
@click.option("--concurrency", type=click.IntRange(1, 256),
              help="Calls at once (default: the recipe's `concurrency`).")
@_cache_option
def watch(recipe: Path, var_pairs: tuple[str, ...], vars_files: tuple[Path, ...], port: int,
          budget: float | None, mock: bool, concurrency: int | None,
          cache_dir: Path | None) -> int:
    """Run the recipe, serve its gallery live, and run again on every save.

    Any file saved in the recipe's folder (the recipe, vars files, local catalog entries,
    input images) starts a run; unchanged instances come from the cache. The open page
    refreshes itself, highlights the new cards and shows problems with their file:line.
    Ctrl-C stops.

    \b
    Example:
      flow watch brand_assets.yaml --mock          # then open http://127.0.0.1:8765/
      flow watch brand_assets.yaml --budget 20
    """
    from .commands.watch import watch_recipe
    from .run.options import RunOptions

    options = RunOptions(var_pairs=var_pairs, vars_files=vars_files, mock=mock,
                         concurrency=concurrency, cache_dir=cache_dir)
    return watch_recipe(recipe, options=options, port=port, budget=budget, out=_out(),
                        err=sys.stderr)


@cli.command()
@click.argument("recipes", nargs=-1, required=True, type=_RECIPE)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.option("--lock", is_flag=True,
              help="Also check that each recipe's lock file is up to date with it, from the "
                   "lock file and the saved assets alone (no cache, no call); exit 4 if not.")
@click.option("--changed", is_flag=True,
              help="The files given are changed files (as pre-commit passes them): check the "
                   "recipes among them, the recipe of each changed lock file and the recipes "
                   "that read a changed catalog entry; skip the rest.")
def validate(recipes: tuple[Path, ...], as_json: bool, lock: bool, changed: bool) -> int:
    """Check recipes without calling anything; exit 3 if any is invalid.

    \b
    Example:
      flow validate recipes/*.yaml
      flow validate brand.yaml --json
      flow validate --lock brand.yaml        # is brand.lock up to date?
    """
    from .commands.validate import validate_files

    return validate_files(list(recipes), as_json=as_json, out=_out(), err=sys.stderr,
                          lock=lock, changed=changed)


@cli.command()
@click.argument("recipe", type=_RECIPE)
@_var_options
@_cache_option
@_remote_option
@click.option("--mock", is_flag=True, help="Show the cache state of --mock runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(recipe: Path, var_pairs: tuple[str, ...], vars_files: tuple[Path, ...],
         cache_dir: Path | None, remote_cache: str | None, mock: bool, as_json: bool) -> int:
    """Show what a run would do: instances in order, cached or to call, estimated credits.

    \b
    Example:
      flow plan examples/brand_assets.yaml
    """
    from .commands.plan import show_plan
    from .run.options import RunOptions

    return show_plan(recipe, var_overrides=_overrides(var_pairs, vars_files),
                     cache_dir=cache_dir, mock=mock, as_json=as_json, out=_out(),
                     remote_cache=remote_cache,
                     stamp_context=RunOptions(var_pairs=var_pairs, vars_files=vars_files,
                                              mock=mock).stamp_context(recipe))


@cli.command()
@click.argument("recipe", type=_RECIPE)
@_var_options
@_cache_option
@_remote_option
@click.option("--mock", is_flag=True, help="Check against the cache of --mock runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(recipe: Path, var_pairs: tuple[str, ...], vars_files: tuple[Path, ...],
           cache_dir: Path | None, remote_cache: str | None, mock: bool, as_json: bool) -> int:
    """Say which instances are fresh, stale (recipe changed since the lock) or missing.

    Exit 0 only when every instance is fresh.

    \b
    Example:
      flow status examples/brand_assets.yaml
    """
    from .commands.status import show_status
    from .run.options import RunOptions

    return show_status(recipe, var_overrides=_overrides(var_pairs, vars_files),
                       cache_dir=cache_dir, mock=mock, as_json=as_json, out=_out(),
                       stamp_context=RunOptions(var_pairs=var_pairs, vars_files=vars_files,
                                                mock=mock).stamp_context(recipe),
                       remote_cache=remote_cache)


@cli.command()
@click.argument("recipe", type=_RECIPE)
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True, help="Mermaid (for Markdown) or Graphviz dot.")
@_var_options
def graph(recipe: Path, fmt: str, var_pairs: tuple[str, ...], vars_files: tuple[Path, ...]) -> int:
    """Print the step graph.

    \b
    Example:
      flow graph examples/brand_assets.yaml --format dot | dot -Tsvg > graph.svg
    """
    from .commands.graph import show_graph

    return show_graph(recipe, fmt=fmt, out=_out(),
                      var_overrides=_overrides(var_pairs, vars_files))


@cli.command()
@click.argument("endpoint_id", required=False, metavar="[ID]")
@click.option("--recipe", type=_RECIPE,
              help="Include this recipe's own catalog entries (its `catalog:`).")
@click.option("--models", is_flag=True,
              help="List each endpoint's known models: current, deprecated (with the day it "
                   "shuts down) or retired, and what to use instead. FLOW_TODAY=YYYY-MM-DD "
                   "judges them on another day.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def endpoints(endpoint_id: str | None, recipe: Path | None, models: bool,
              as_json: bool) -> int:
    """List the endpoint catalog, or show one endpoint's parameters and allowed values.

    \b
    Example:
      flow endpoints
      flow endpoints recraft.generate_image
      flow endpoints --models
      flow endpoints --recipe brand.yaml
    """
    from .commands.endpoints import show_endpoints

    return show_endpoints(endpoint_id, as_json=as_json, out=_out(), recipe=recipe,
                          models=models)


@cli.command()
@click.argument("name", default="recipe")
def init(name: str) -> int:
    """Write a commented starter recipe NAME.yaml that validates and runs with --mock.

    \b
    Example:
      flow init brand_kit && flow run brand_kit.yaml --mock
    """
    from .commands.init import init_recipe

    return init_recipe(name, folder=Path.cwd(), out=_out())


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file (atomically) instead of printing it.")
def schema(output: Path | None) -> int:
    """Print the recipe JSON Schema (editors use it for completion and checks).

    \b
    Example:
      flow schema > recipe.schema.json
      flow schema -o schemas/recipe.schema.json   # in flowrunner's own repository
    """
    from .commands.schema import print_schema

    return print_schema(out=_out(), output=output)


@cli.command()
@click.argument("recipe", type=_RECIPE)
@click.argument("step")
@_var_options
@_cache_option
@_remote_option
@click.option("--mock", is_flag=True, help="Explain against the cache of --mock runs.")
def why(recipe: Path, step: str, var_pairs: tuple[str, ...], vars_files: tuple[Path, ...],
        cache_dir: Path | None, remote_cache: str | None, mock: bool) -> int:
    """Explain a step's cache key, and what changed since the lock file if it would call again.

    \b
    Example:
      flow why examples/brand_assets.yaml logo
    """
    from .commands.why import explain_step

    return explain_step(recipe, step, var_overrides=_overrides(var_pairs, vars_files),
                        cache_dir=cache_dir, mock=mock, out=_out(),
                        remote_cache=remote_cache)


@cli.command()
@click.argument("recipe", type=_RECIPE)
@click.option("--base", default="HEAD", show_default=True, metavar="REF",
              help="The git revision to compare with (in a pull request job, the target "
                   "branch, e.g. origin/main).")
@click.option("--plan", "against_plan", is_flag=True,
              help="Compare with what a run would make now, instead of the current lock file.")
@_var_options
@_cache_option
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where diff.html goes (default: the recipe's output_dir).")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when anything changed (like `git diff --exit-code`).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per change.")
def diff(recipe: Path, base: str, against_plan: bool, var_pairs: tuple[str, ...],
         vars_files: tuple[Path, ...], cache_dir: Path | None, output_dir: Path | None,
         exit_code: bool, as_json: bool) -> int:
    """Show what changed against a git base: instances added, removed or changed, and why.

    Also writes <output_dir>/diff.html with each changed asset before and after.

    \b
    Example:
      flow diff examples/brand_assets.yaml
      flow diff brand.yaml --base origin/main --exit-code
    """
    from .commands.diff import show_diff

    return show_diff(recipe, base=base, var_overrides=_overrides(var_pairs, vars_files),
                     cache_dir=cache_dir, against_plan=against_plan, as_json=as_json,
                     exit_code=exit_code, output_dir=output_dir, out=_out())


@cli.command()
@click.argument("recipe", type=_RECIPE)
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The output folder to check (default: the recipe's output_dir).")
@click.option("--mock", is_flag=True,
              help="Accept files made by the emulator (without it they fail the check).")
def verify(recipe: Path, output_dir: Path | None, mock: bool) -> int:
    """Check that the files in the output folder match the lock file (sha256).

    \b
    Example:
      flow verify examples/brand_assets.yaml
    """
    from .commands.verify import verify_outputs

    return verify_outputs(recipe, output_dir=output_dir, out=_out(), mock=mock)


@cli.command()
@click.argument("recipe", type=_RECIPE)
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The output folder (default: the recipe's output_dir).")
def report(recipe: Path, output_dir: Path | None) -> int:
    """Rebuild the gallery, <output_dir>/index.html, from the lock file.

    \b
    Example:
      flow report examples/brand_assets.yaml
    """
    from .commands.report import build_report

    return build_report(recipe, output_dir=output_dir, out=_out())


@cli.group()
def cache() -> None:
    """Inspect and prune the cache (ls, gc, clear)."""


def _remote_flag(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--remote", "on_remote", is_flag=True,
                        help="Act on the remote cache (--remote-cache / FLOW_REMOTE_CACHE) "
                             "instead of the local one.")(func)
    return _remote_option(func)


@cache.command("ls")
@_recipe_or_cache_dir
@_remote_flag
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def cache_ls(recipe: Path | None, cache_dir: Path | None, on_remote: bool,
             remote_cache: str | None, as_json: bool) -> int:
    """List the cache entries of RECIPE's cache: key, endpoint, size, age.

    \b
    Example:
      flow cache ls examples/brand_assets.yaml
      flow cache ls --cache-dir /shared/flow-cache
      flow cache ls --remote --remote-cache s3://team-bucket/flow
    """
    from .commands.cache import list_cache, list_remote

    if on_remote:
        return list_remote(_remote_url(remote_cache), as_json=as_json, out=_out())
    return list_cache(recipe, cache_dir=cache_dir, as_json=as_json, out=_out())


def _remote_url(remote_cache: str | None) -> str:
    if not remote_cache:
        raise click.UsageError("--remote needs --remote-cache URL (or FLOW_REMOTE_CACHE)")
    return remote_cache


@cache.command("gc")
@click.argument("recipes", nargs=-1, required=True, type=_RECIPE)
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="FLOW_CACHE_DIR", show_envvar=True,
              help="The cache to prune. Default: .flow/cache beside the first recipe.")
@_remote_flag
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def cache_gc(recipes: tuple[Path, ...], cache_dir: Path | None, on_remote: bool,
             remote_cache: str | None, dry_run: bool) -> int:
    """Remove entries that no given recipe's plan or lock file references.

    With --remote, prune the remote cache instead: list every recipe that shares it.

    \b
    Example:
      flow cache gc recipes/*.yaml
      flow cache gc recipes/*.yaml --remote --remote-cache s3://team-bucket/flow
    """
    from .commands.cache import collect_garbage

    return collect_garbage(list(recipes), cache_dir=cache_dir, dry_run=dry_run, out=_out(),
                           remote_cache=_remote_url(remote_cache) if on_remote else None)


@cache.command("push")
@click.argument("recipes", nargs=-1, required=True, type=_RECIPE)
@_cache_option
@_remote_option
@click.option("--mock", is_flag=True, help="Push the results of --mock runs instead.")
def cache_push(recipes: tuple[Path, ...], cache_dir: Path | None, remote_cache: str | None,
               mock: bool) -> int:
    """Upload RECIPES' cached results that the remote cache lacks.

    A run uploads what it calls; this shares results made before the remote was set up.

    \b
    Example:
      flow cache push brand.yaml --remote-cache s3://team-bucket/flow
    """
    from .commands.cache import share_results

    return share_results(list(recipes), cache_dir=cache_dir, url=_remote_url(remote_cache),
                         mock=mock, out=_out())


@cache.command("clear")
@_recipe_or_cache_dir
def cache_clear(recipe: Path | None, cache_dir: Path | None) -> int:
    """Remove every entry of RECIPE's cache (the next run calls everything again).

    \b
    Example:
      flow cache clear examples/brand_assets.yaml
    """
    from .commands.cache import clear_cache

    return clear_cache(recipe, cache_dir=cache_dir, out=_out())


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback only unless you mean it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--api-key", envvar="FLOW_EMULATOR_KEY", show_envvar=True,
              help="Answer 401 unless requests carry this key. Default: accept any key.")
@click.option("--latency", type=float, default=0.0, show_default=True,
              help="Seconds to wait before answering each API call.")
@click.option("--kind", "kind", type=click.Choice(["gateway", "recraft", "bfl"]),
              default="gateway", show_default=True,
              help="Which provider to stand in for: the ElkAPI gateway (/recraft/..., "
                   "/flux/...), Recraft's own API (/v1/images/...) or BFL's (/v1/{model}, "
                   "x-key).")
@click.option("--fault", "faults", multiple=True, metavar="KIND[:COUNT]",
              help=f"Inject a fault into the next COUNT matching requests: {FAULT_HELP}. "
                   "May be repeated.")
@click.option("--task-seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="How long each task runs before its result, however often it is polled "
                   "(a provider's minutes, for long-task tests and benchmarks).")
@click.option("--max-running", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="N", help="Tasks one key may have running; a submit past it gets the "
                                "provider's own refusal (Kling 1303, Midjourney code 23, 429). "
                                "0: no limit.")
def emulator(host: str, port: int, api_key: str | None, latency: float, kind: str,
             faults: tuple[str, ...], task_seconds: float, max_running: int) -> int:
    """Serve the bundled emulator of a provider (offline; checks requests against the
    provider's published contract).

    Point a recipe at it with `provider: {base_url: http://127.0.0.1:8787}`, or use
    `flow run --mock`, which starts one for the run.

    \b
    Example:
      flow emulator --port 8787 --latency 0.5 --fault 429:2
      flow emulator --kind bfl --port 8788
      flow emulator --task-seconds 10 --max-running 50
    """
    from .commands.emulator import serve_emulator

    return serve_emulator(host=host, port=port, api_key=api_key, latency=latency,
                          kind=kind, faults=list(faults), out=sys.stderr,
                          task_seconds=task_seconds, max_running=max_running)


def _print_error(exc: FlowError) -> None:
    if isinstance(exc, SpecError):
        click.echo(format_issues(exc.issues), err=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            from .run.reporting import github_annotation

            for issue in exc.issues:
                click.echo(github_annotation(str(issue.location), issue.message))
        count = len(exc.issues)
        click.echo(f"{count} error{'s' * (count != 1)}; nothing was run", err=True)
        return
    click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `flow` console script."""
    # flow builds large trees of small objects (recipes, plans) and lives briefly: the
    # default thresholds run full collections over and over while parsing a big recipe.
    gc.set_threshold(100_000, 50, 100)
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TERM", "dumb")
    try:
        code = cli.main(args=argv, prog_name="flow", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
    except FlowError as exc:
        if _state["traceback"]:
            raise
        _print_error(exc)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # noqa: BLE001 - the one place that catches broadly
        args = list(sys.argv[1:] if argv is None else argv)
        log = write_crash_log(exc, args)
        if _state["traceback"]:
            import traceback

            click.echo(redact_secrets(traceback.format_exc(), args), err=True, nl=False)
        click.echo(redact_secrets(f"flow: an unexpected error occurred (a bug in flowrunner): "
                                  f"{type(exc).__name__}: {exc}", args), err=True)
        click.echo(f"  the details are in {log}: please attach that file to a bug report"
                   if log else "  hint: `flow --traceback ...` prints the details", err=True)
        code = EXIT_CRASH
    sys.exit(code if isinstance(code, int) else 0)
