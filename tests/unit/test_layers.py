"""The import layers of the architecture, checked by walking every module's imports (lazy
ones inside functions included).

One row per layer; a module may import only from rows *below* its own. Since no import may
point sideways or up, any import cycle among flowrunner's modules fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flowrunner"

LAYERS: list[set[str]] = [
    # 0 leaves
    {"errors", "_json", "emulator.faults", "__init__", "workers"},
    # 0b leaves over the error types: checked records, the run's cancellation
    {"providers", "records", "watchdog", "cancellation", "proxies", "models"},
    # 1 values and small services over the leaves
    {"throttle", "cache_key", "limits", "_resources", "source", "templating", "results", "budget",
     "imaging", "crashlog", "options", "gitrev", "diffpage", "changes", "objectstore",
     "media", "yaml_text"},
    # 2 stores and transports
    {"cache", "catalog", "reporting", "http"},
    # 3 files kept beside a recipe, artifacts, checks
    {"schema", "stamp", "lockfile", "gallery", "downloads", "editorschema", "remote"},
    # 4 the recipe model; the emulator's media and the providers' contracts
    {"spec", "emulator.images", "emulator.contract", "emulator.sounds", "emulator.video",
     "emulator.newapi"},
    # the emulator's task families
    {"emulator.suno", "emulator.midjourney", "emulator.kling", "emulator.openai_images",
     "emulator.ideogram", "emulator.unified_video",
     "emulator.replicate", "emulator.video_tasks", "emulator.sora",
     "emulator.minimax", "emulator.runway"},
    # 5 the step graph; the emulator (models providers, imports nothing of the run)
    {"graph", "emulator.server", "emulator"},
    # 6 one instance's template context
    {"context"},
    # 7 its input files
    {"inputs"},
    # 8 its prepared call and cache key
    {"preparation"},
    # 9 the parts of a call; recipe → plan; what the cache knows; comparing results
    {"request", "polling", "answers", "local_steps", "planning", "survey", "diffing"},
    # 10 making a call
    {"calls"},
    # 11 orchestration: the scheduler and what a finished run writes
    {"scheduler", "sidecars"},
    # 12 use cases: one module per subcommand
    {"commands", "commands.run", "commands.validate", "commands.plan", "commands.status",
     "commands.why", "commands.verify", "commands.graph", "commands.endpoints",
     "commands.schema", "commands.report", "commands.init", "commands.cache",
     "commands.emulator", "commands.diff"},
    # 13 the shell
    {"cli"},
    {"__main__"},
]
LAYER_OF = {module: number for number, row in enumerate(LAYERS) for module in row}
# the emulator stands beside the layers with its own copies of the checks it needs (it may
# not use schema.py or imaging.py's view of things: those follow our catalog)
THIRD_PARTY_OWNERS = {"click": {"cli"}, "requests": set(), "certifi": {"http"},
                      "urllib3": {"http", "objectstore"},
                      "jinja2": {"templating"}, "jsonschema": {"schema", "emulator.contract"},
                      "fastjsonschema": {"schema"}, "PIL": {"imaging", "emulator.contract"},
                      "yaml": {"source", "yaml_text"}, "boto3": {"objectstore"},
                      "botocore": {"objectstore"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _internal_imports(path: Path) -> set[str]:
    module = _module_name(path)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                target = ".".join([*base, *name.split(".")]) or "__init__"
                found.add("__init__" if target == "__version__" else target)
    return found


def _third_party(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_every_module_is_in_the_layer_table() -> None:
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    assert modules - set(LAYER_OF) == set()


def test_imports_only_point_down() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for target in sorted(_internal_imports(path)):
            if target not in LAYER_OF:
                problems.append(f"{module} imports {target}, which is in no layer")
            elif LAYER_OF[target] >= LAYER_OF[module]:
                problems.append(f"{module} (layer {LAYER_OF[module]}) imports {target} "
                                f"(layer {LAYER_OF[target]})")
    assert problems == []


def test_a_cycle_would_fail_the_layer_rule() -> None:
    """The rule itself: two modules importing each other cannot both point down."""
    a, b = LAYER_OF["scheduler"], LAYER_OF["sidecars"]
    assert not (a < b and b < a)
    assert all(len(row) == len(set(row)) for row in LAYERS)
    assert len(LAYER_OF) == sum(len(row) for row in LAYERS), "a module is in two layers"


def test_third_party_libraries_stay_in_their_modules() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for name in _third_party(path):
            owners = THIRD_PARTY_OWNERS.get(name)
            if owners is not None and module not in owners:
                problems.append(f"{module} imports {name}")
    assert problems == []


def test_the_emulator_imports_nothing_of_the_run_nor_the_catalog() -> None:
    # it models the providers from their own contracts: reading our catalog would make it
    # agree with every mistake in it
    run_side = {"scheduler", "calls", "survey", "planning", "preparation", "cli", "sidecars",
                "catalog", "schema", "spec", "_resources"}
    for path in (PACKAGE / "emulator").glob("*.py"):
        assert not (_internal_imports(path) & run_side), path.name
