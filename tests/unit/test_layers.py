"""The architecture's import rules, checked on every module's imports (lazy ones inside
functions included).

Each subpackage's docstring ends with a line `May import: …` naming the subpackages it may
use; `the leaves` are the few top-level modules everything may use (errors, canonical JSON,
worker threads, cancellation, record checks, size limits). The rules must form no cycle,
no module may import one its package's rule does not allow, and no module may import
itself through others (a real cycle check, shown failing on a broken graph below).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flowrunner"
LEAVES = {"__init__", "errors", "_json", "workers", "cancellation", "records", "limits"}
SHELL = {"cli", "__main__", "api"}  # the command line and the Python API: anything
THIRD_PARTY_OWNERS = {"click": {"cli"}, "requests": set(), "certifi": {"net.http"},
                      "urllib3": {"net.http", "store.objectstore"},
                      "jinja2": {"recipe.templating"},
                      "jsonschema": {"recipe.schema", "emulator.contract"},
                      "fastjsonschema": {"recipe.schema"},
                      "PIL": {"media.imaging", "emulator.contract"},
                      "yaml": {"recipe.source", "recipe.yaml_text"},
                      "boto3": {"store.objectstore"}, "botocore": {"store.objectstore"}}
Graph = dict[str, set[str]]


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
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) == "TYPE_CHECKING" for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # names for annotations only: never imported at run time
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                target = ".".join([*base, *name.split(".")]) or "__init__"
                found.add("__init__" if target == "__version__" else target)
    return found


def import_graph() -> Graph:
    """module → the flowrunner modules it imports."""
    return {_module_name(p): _internal_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def package_of(module: str) -> str:
    head = module.split(".")[0]
    return "leaves" if head in LEAVES else "shell" if head in SHELL else head


def declared_rules() -> dict[str, set[str]]:
    """subpackage → what its docstring says it may import."""
    rules: dict[str, set[str]] = {"leaves": set(), "shell": set()}
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        found = re.search(r"May import: (.+?)\.\s*$", doc, re.S)
        assert found, f"{init.parent.name}/__init__.py does not say what it may import"
        names = {n.strip() for n in found.group(1).replace("\n", " ").split(",")}
        rules[init.parent.name] = {"leaves" if n == "the leaves" else n for n in names}
    return rules


def rule_breaks(graph: Graph, rules: dict[str, set[str]]) -> list[str]:
    """Each import that crosses into a package its own package's rule does not allow."""
    problems = []
    for module, targets in sorted(graph.items()):
        mine = package_of(module)
        for target in sorted(targets):
            theirs = package_of(target)
            if theirs == mine or mine == "shell":
                continue
            if theirs not in rules.get(mine, set()):
                problems.append(f"{module} ({mine}) imports {target} ({theirs})")
    return problems


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected groups of more than one node (or a node importing itself):
    every import cycle, found by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_subpackage_says_what_it_owns_and_may_import() -> None:
    rules = declared_rules()
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages <= set(rules)
    for name, allowed in rules.items():
        assert allowed <= set(rules), f"{name} names an unknown package: {allowed - set(rules)}"
    # the rules themselves point one way: no package may reach itself through others
    assert cycles({name: set(allowed) for name, allowed in rules.items()}) == []


def test_every_top_level_module_is_a_leaf_or_the_shell() -> None:
    top = {_module_name(p) for p in PACKAGE.glob("*.py")}
    assert top <= LEAVES | SHELL, top - LEAVES - SHELL


def test_imports_follow_the_package_rules() -> None:
    assert rule_breaks(import_graph(), declared_rules()) == []


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(import_graph()) == []


def test_a_broken_graph_fails_both_checks() -> None:
    """The checks themselves: an import against a rule, and a cycle, are both found."""
    rules = declared_rules()
    upward = {"run.scheduler": {"kit.sidecars"}, "kit.sidecars": set()}
    assert rule_breaks(upward, rules) == ["run.scheduler (run) imports kit.sidecars (kit)"]
    looped = {"call.calls": {"call.polling"}, "call.polling": {"call.answers"},
              "call.answers": {"call.calls"}}
    assert cycles(looped) == [["call.answers", "call.calls", "call.polling"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # and the rules: a package that would import one that imports it
    assert cycles({**{k: set(v) for k, v in rules.items()}, "store": {"run"}}) != []


def test_third_party_libraries_stay_in_their_modules() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = {node.module.split(".")[0]}
            elif isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            else:
                continue
            for name in names:
                owners = THIRD_PARTY_OWNERS.get(name)
                if owners is not None and module not in owners:
                    problems.append(f"{module} imports {name}")
    assert problems == []


MAX_FUNCTION_LINES = 60  # a function fits on a screen


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """The functions (methods and nested ones too) over ``limit`` lines, as `name (lines)`."""
    spans = [(node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
             for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [f"{name} ({lines})" for name, lines in spans if lines > limit]


def test_every_function_fits_on_a_screen() -> None:
    found = {str(path.relative_to(PACKAGE)): long
             for path in sorted(PACKAGE.rglob("*.py"))
             if (long := long_functions(path.read_text(encoding="utf-8")))}
    assert found == {}


def test_a_long_function_is_found() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def short():\n    return 1\n\ndef long():\n{body}") == ["long (61)"]
