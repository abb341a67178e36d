"""The import layers of STYLE.md §B2, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flowrunner"

LAYERS = {
    "errors": 0, "_types": 0, "_resources": 0,
    "source": 1, "catalog": 1, "cache": 1, "results": 1, "lock": 1,
    "schema": 2, "templating": 2, "http": 2, "reporting": 2, "throttle": 2, "gallery": 2, "budget": 2, "imaging": 2,
    "spec": 3, "downloads": 3, "graph": 3, "calls": 3, "commands": 4,
    "survey": 4, "execute": 4, "records": 4, "run": 4, "stamp": 1, "inspection": 4, "emulator": 4,
    "cli": 5, "__main__": 5, "__init__": 0,
}
THIRD_PARTY_OWNERS = {"click": {"cli"}, "requests": {"http"}, "jinja2": {"templating"},
                      "jsonschema": {"schema"}, "fastjsonschema": {"schema"},
                      "PIL": {"imaging"}, "yaml": {"source"}}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if rel.parts[0] == "emulator" else rel.stem


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = (node.module or "").split(".")[0]
                if base:
                    found.append((base, node.level))
                else:
                    found.extend((alias.name, node.level) for alias in node.names)
            elif node.module:
                found.append((node.module.split(".")[0], 0))
        elif isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], 0) for alias in node.names)
    return found


def test_no_module_imports_a_higher_layer() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        in_emulator = module == "emulator"
        for name, level in _imports(path):
            if level == 0:
                continue
            if in_emulator and level == 1:
                continue  # inside the emulator package
            if name in ("execute", "survey", "cli") and in_emulator:
                problems.append(f"{path.name}: the emulator imports the executor ({name})")
            if name in LAYERS and LAYERS[name] > LAYERS[module]:
                problems.append(f"{path.relative_to(PACKAGE)} (layer {LAYERS[module]}) imports "
                                f"{name} (layer {LAYERS[name]})")
    assert problems == []


def test_third_party_libraries_stay_in_their_modules() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for name, level in _imports(path):
            owners = THIRD_PARTY_OWNERS.get(name)
            if level == 0 and owners is not None and module not in owners:
                problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert problems == []


def test_every_module_is_in_the_layer_table() -> None:
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    assert modules <= set(LAYERS)
