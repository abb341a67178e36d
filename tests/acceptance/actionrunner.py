"""Runs the GitHub Action's steps (`action.yml`) here as a runner would: inputs through
`env:`, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, `if:` conditions; `uses:` steps recorded with
their inputs. `python -m pip install` is recorded, not run: the test environment has
flowrunner installed already."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from conftest import REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text())


def _value(expression: str, context: dict[str, Any]) -> Any:
    """A `${{ }}` expression of the few forms action.yml uses."""
    text = expression.strip()
    text = re.sub(r"\balways\(\)", "True", text)
    text = re.sub(r"\b(inputs|steps|github|runner)\.([\w.-]+)",
                  lambda m: repr(_lookup(context, m.group(1), m.group(2))), text)
    text = text.replace("&&", " and ").replace("||", " or ")
    return eval(text, {"__builtins__": {}},  # our own action.yml
                {"True": True, "format": lambda pattern, *values: pattern.format(*values)})


def _lookup(context: dict[str, Any], root: str, path: str) -> Any:
    value: Any = context[root]
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def _expand(text: str, context: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(_value(m.group(1), context)), str(text))


def run_action(inputs: dict[str, str], *, workspace: Path, env: dict[str, str],
               event: str = "push") -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Run action.yml's shell steps in order as a runner does (a step after a failure only
    with always()); `uses:` steps are recorded with their expanded inputs. Returns the
    first failing status (0), the context and what each `uses:` step was given."""
    given = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    given.update(inputs)
    context: dict[str, Any] = {"inputs": given, "steps": {}, "runner": {"os": "Linux"},
                               "github": {"event_name": event, "base_ref": "", "job": "assets",
                                          "token": "t", "event": {}}}
    temp = workspace / ".runner"
    temp.mkdir()
    summary = temp / "summary.md"
    uses: list[dict[str, Any]] = []
    status = 0
    shim = _pip_shim(temp)
    for step in ACTION["runs"]["steps"]:
        condition = step.get("if", "success()").replace("success()", str(status == 0))
        if not _value(condition, context):
            continue
        if "uses" in step:
            uses.append({"uses": step["uses"], **{k: _expand(v, context)
                                                  for k, v in step.get("with", {}).items()
                                                  if "hashFiles" not in str(v)}})
            continue
        output = temp / f"output-{len(uses)}-{step.get('id', 'step')}"
        output.touch()
        step_env = {**os.environ, **env, "GITHUB_ACTION_PATH": str(REPO),
                    "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(output),
                    "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(temp),
                    "GITHUB_ACTIONS": "true", "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
                    **{k: _expand(v, context) for k, v in step.get("env", {}).items()}}
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=step_env,
                              capture_output=True, text=True, timeout=300)
        context.setdefault("log", []).append(done.stdout + done.stderr)
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)}
        if done.returncode and not status:
            status = done.returncode
    context["summary"] = summary.read_text() if summary.exists() else ""
    return status, context, uses


def _pip_shim(folder: Path) -> Path:
    """`python -m pip install …` is recorded, not run (the test environment has flowrunner
    already); every other `python` is the real one."""
    shim = folder / "bin"
    shim.mkdir()
    (shim / "python").write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1 $2 $3" = "-m pip install" ]; then echo "$@" >> '
        f'"{folder}/pip-installs"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n')
    (shim / "python").chmod(0o755)
    return shim
