"""`flow validate`: check recipe files without calling anything."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from ..errors import SpecError, format_issues
from ..run.planning import load_plan
from ..run.reporting import github_annotation


def validate_files(paths: list[Path], *, as_json: bool, out: TextIO, err: TextIO) -> int:
    """`flow validate`: check every file, print every problem; 0 when all are valid, else 3."""
    results: list[dict[str, Any]] = []
    failed = False
    for path in paths:
        try:
            plan = load_plan(path)
        except SpecError as exc:
            failed = True
            results.append({"file": str(path), "valid": False,
                            "errors": [i.to_json() for i in exc.issues]})
            if not as_json:
                print(format_issues(exc.issues), file=err)
                if os.environ.get("GITHUB_ACTIONS") == "true":
                    for issue in exc.issues:
                        print(github_annotation(str(issue.location), issue.message), file=out)
            continue
        results.append({"file": str(path), "valid": True, "errors": [],
                        "warnings": [i.to_json() for i in plan.warnings],
                        "steps": len(plan.step_order), "instances": len(plan.instances)})
        if not as_json:
            for warning in plan.warnings:  # said, but valid: exit 0
                print(warning.format(), file=err)
            print(f"{path}: ok ({len(plan.step_order)} steps, {len(plan.instances)} instances)"
                  + (f", {len(plan.warnings)} warning{'s' * (len(plan.warnings) != 1)}"
                     if plan.warnings else ""), file=out)
    if as_json:
        json.dump({"valid": not failed, "files": results}, out, indent=2)
        out.write("\n")
    elif failed:
        count = sum(len(r["errors"]) for r in results)
        bad = sum(1 for r in results if not r["valid"])
        print(f"{count} error{'s' * (count != 1)} in {bad} file{'s' * (bad != 1)}", file=err)
    return 3 if failed else 0
