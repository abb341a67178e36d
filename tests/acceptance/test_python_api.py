"""The Python API (`flowrunner.load`): what the command line does, as values and exceptions,
against the real emulator over loopback HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import KEY_ENV, LOGO_CHAIN, recipe

import flowrunner
from conftest import EXAMPLES, IGNORED, Emulator


def test_load_validate_plan_and_run_give_typed_results(tmp_path: Path, emulator: Emulator,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(*next(iter(KEY_ENV.items())))
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    loaded = flowrunner.load(path, vars={"brand": "Globex"})
    assert loaded.validate() == []
    plan = loaded.plan()
    assert [(i.instance, i.state) for i in plan.instances] == \
        [("logo", "missing"), ("clean", "blocked"), ("svg", "blocked")]
    assert plan.to_call == 3 and plan.cached == 0
    assert plan.instances[0].params["prompt"] == "Logo for Globex"
    events: list[flowrunner.RunEvent] = []
    result = loaded.run(on_event=events.append)
    assert isinstance(result, flowrunner.RunResult) and result.ok
    assert [(r.instance_id, r.status) for r in result.results] == \
        [("logo", "ok"), ("clean", "ok"), ("svg", "ok")]
    assert (tmp_path / "assets" / result.results[0].saved[0]).is_file()
    assert result.credits_spent == sum(r.credits for r in result.results) > 0
    assert [e.kind for e in events][0] == "run_started" and events[-1].kind == "run_finished"
    finished = [e.result for e in events if e.kind == "step_finished"]
    assert [r.instance_id for r in finished if r] == ["logo", "clean", "svg"]
    sent = emulator.requests()[0]
    assert (sent.get("json") or sent.get("fields") or {})["prompt"] == "Logo for Globex"
    # a second run is all cache hits, and the plan says so
    again = loaded.run()
    assert [r.status for r in again.results] == ["cached"] * 3
    assert loaded.plan().cached == 3


def test_errors_are_the_command_lines_with_their_locations(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nsteps:\n  logo:\n    uses: recraft.generate_imag\n"
                    "    with: {prompt: x}\n")
    with pytest.raises(flowrunner.SpecError) as caught:
        flowrunner.load(path).validate()
    issue = caught.value.issues[0]
    assert (issue.location.line, issue.location.col) == (4, 11)
    assert "recraft.generate_image" in (issue.hint or "")
    assert caught.value.exit_code == 3
    with pytest.raises(flowrunner.UsageError, match="no such recipe file"):
        flowrunner.load(tmp_path / "missing.yaml")


def test_a_budget_and_unknown_steps_raise_before_any_call(tmp_path: Path,
                                                         emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    with pytest.raises(flowrunner.UsageError, match="--only nope: no step 'nope'"):
        flowrunner.load(path).run(mock=True, only=["nope"])
    with pytest.raises(flowrunner.BudgetExceeded):
        flowrunner.load(path).run(mock=True, max_credits=0.5)
    assert emulator.requests() == []


def test_the_example_runs_from_python_under_mock(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    result = flowrunner.load(tmp_path / "examples" / "brand_assets.yaml").run(
        mock=True, only=["logo"])
    assert result.ok and result.mock
    assert [r.instance_id for r in result.results] == ["house_style", "logo"]


def test_the_public_names_are_typed_and_importing_the_package_stays_light() -> None:
    assert (Path(flowrunner.__file__).parent / "py.typed").is_file()
    for name in flowrunner.__all__:
        assert getattr(flowrunner, name) is not None, name
    # `flow`'s no-op path imports the package: the API's dependencies load on first use
    code = ("import sys, flowrunner; heavy = {'jinja2', 'click', 'yaml', 'urllib3'}; "
            "print(sorted(heavy & set(sys.modules)))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert shown == "[]"


def test_an_on_event_that_raises_gets_its_error_after_a_whole_run_and_threads_end(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setenv(*next(iter(KEY_ENV.items())))
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    heard: list[str] = []

    def fussy(event: flowrunner.RunEvent) -> None:
        heard.append(event.kind)
        if event.kind == "step_finished":
            raise RuntimeError("the notebook's callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        flowrunner.load(path).run(on_event=fussy)
    assert heard.count("step_finished") == 1  # nothing more after it raised
    assert "svg" in path.with_suffix(".lock").read_text()  # the run finished, recorded

    def watchdogs() -> int:
        return sum(t.name == "flow-watchdog" for t in threading.enumerate())

    before = watchdogs()
    for _ in range(3):
        flowrunner.load(path).run(refresh=["svg"])
    time.sleep(1.5)  # a closed client's watchdog ends within a tick of its last deadline
    assert watchdogs() <= before  # each run used to leave one behind
