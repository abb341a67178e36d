"""Runs that stop when they should (issue 24, defects 4 and 10): Ctrl-C and SIGTERM stop a
run while it polls, waits for a stalled answer or backs off, at once, and the submitted
task stays journaled for the next run to resume without paying again; a second Ctrl-C
exits at once, without a traceback; a task whose status cannot be read fails after a few
polls instead of at the timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import KEY_ENV, recipe

from conftest import Emulator, flow

FLUX = """
  hero:
    uses: flux.generate
    with: {model: flux-dev, prompt: "A fox"}
    save: hero.png
"""
# a hang guard for a loaded CI machine; the figure itself (a few hundred ms) is measured
# by benchmarks/hardening.py
EXIT_WITHIN = 5.0


def _start(path: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, **KEY_ENV)
    return subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def _stop(run: subprocess.Popen[str], sig: int) -> tuple[float, str, str]:
    started = time.monotonic()
    run.send_signal(sig)
    try:
        out, err = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.kill()
        out, err = run.communicate()
        pytest.fail(f"still running 60 s after the signal:\n{out}\n{err}")
    return time.monotonic() - started, out, err


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_polling_at_once_and_the_next_run_resumes_the_task(
        tmp_path: Path, emulator: Emulator, sig: int, code: int) -> None:
    emulator.fault("stuck-task")
    path = recipe(tmp_path, emulator.base_url, FLUX)
    path.write_text(path.read_text().replace("timeout: 30", "timeout: 600"))
    run = _start(path)
    polls = lambda: [r for r in emulator.requests() if r["method"] == "GET"]
    _wait_for(lambda: len(polls()) >= 2)
    took, out, err = _stop(run, sig)
    assert run.returncode == code, (out, err)
    assert took < EXIT_WITHIN, f"exited {took:.1f} s after the signal"
    assert "Traceback" not in err
    journal = list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))
    assert len(journal) == 1  # the paid task is remembered
    with emulator.state.lock:
        for task in emulator.state.tasks.values():
            task["stuck"] = False
    submits = [r for r in emulator.requests() if r["method"] == "POST"]
    emulator.reset()
    resumed = flow("run", path, env=KEY_ENV)
    assert resumed.code == 0, resumed
    assert len(submits) == 1
    assert [r for r in emulator.requests() if r["method"] == "POST"] == []  # not paid twice
    assert (tmp_path / "assets" / "hero.png").is_file()


@pytest.mark.slow
def test_a_stalled_answer_and_a_backoff_do_not_hold_the_exit(tmp_path: Path,
                                                            emulator: Emulator) -> None:
    emulator.fault("slow-json")  # the first answer drips a byte at a time
    emulator.fault("429", count=100, retry_after=30)  # the others back off for 30 s
    path = recipe(tmp_path, emulator.base_url, """
  a:
    uses: recraft.generate_image
    with: {prompt: "a", size: 1024x1024}
  b:
    uses: recraft.generate_image
    with: {prompt: "b", size: 1024x1024}
""")
    path.write_text(path.read_text().replace("timeout: 30", "timeout: 600"))
    run = _start(path)
    _wait_for(lambda: len(emulator.requests()) >= 2)
    time.sleep(0.3)
    took, out, err = _stop(run, signal.SIGINT)
    assert run.returncode == 130, (out, err)
    assert took < EXIT_WITHIN, f"exited {took:.1f} s after the signal"
    assert "Traceback" not in err


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(tmp_path: Path,
                                                            emulator: Emulator) -> None:
    emulator.state.latency = 30  # every answer takes 30 s
    path = recipe(tmp_path, emulator.base_url, """
  a:
    uses: recraft.generate_image
    with: {prompt: "a", size: 1024x1024}
""")
    run = _start(path)
    _wait_for(lambda: len(emulator.requests()) >= 1)
    run.send_signal(signal.SIGINT)
    time.sleep(0.05)
    took, out, err = _stop(run, signal.SIGINT)
    assert run.returncode == 130, (out, err)
    assert took < EXIT_WITHIN
    assert "Traceback" not in err
    assert "Exception ignored" not in err


@pytest.mark.slow
def test_a_task_whose_status_cannot_be_read_fails_fast_and_a_fixed_entry_resumes_it(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 24, defect 10: a status path that finds nothing in the answers (the gateway
    reshaped them) used to be polled until the timeout, 20-30 minutes after paying."""
    import json

    from flowrunner.catalog.resources import read_json

    entry = read_json("endpoints", "flux", "generate.json")
    entry["id"] = "team.flux"
    right = entry["task"]["status"]
    entry["task"]["status"] = "state.value"  # the answers have no such field
    (tmp_path / "flux.json").write_text(json.dumps(entry))
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: team.flux
    with: {model: flux-dev, prompt: "A fox"}
    save: hero.png
""", extra="catalog: [flux.json]\n")
    path.write_text(path.read_text().replace("timeout: 30", "timeout: 600"))
    started = time.monotonic()
    failed = flow("run", path, env=KEY_ENV, timeout=120)
    assert failed.code == 1, failed
    assert time.monotonic() - started < 60  # a hang guard: three polls, not ten minutes
    assert "3 answers in a row have no status at 'state.value'" in failed.out
    assert "top-level keys: " in failed.out and "status" in failed.out
    assert "resumes it without paying again" in failed.out
    assert len(list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))) == 1
    entry["task"]["status"] = right  # the entry fixed
    (tmp_path / "flux.json").write_text(json.dumps(entry))
    emulator.reset()
    fixed = flow("run", path, env=KEY_ENV)
    assert fixed.code == 0, fixed
    assert [r for r in emulator.requests() if r["method"] == "POST"] == []  # no new submit
    assert (tmp_path / "assets" / "hero.png").is_file()


@pytest.mark.slow
def test_ctrl_c_while_a_submit_is_answered_keeps_its_task(
        tmp_path: Path, emulator: Emulator) -> None:
    """A paid submit whose answer arrives within the interruption's grace is read to its
    end and journaled (the watchdog used to close it): the next run resumes the task."""
    emulator.state.latency = 1.0
    path = recipe(tmp_path, emulator.base_url, FLUX)
    run = _start(path)
    _wait_for(lambda: any(r["method"] == "POST" for r in emulator.requests()))
    time.sleep(0.3)  # the submit is at the provider; its answer comes 0.7 s later
    took, out, err = _stop(run, signal.SIGINT)
    assert run.returncode == 130, (out, err)
    assert took < EXIT_WITHIN and "Traceback" not in err
    assert len(list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))) == 1, out
    emulator.state.latency = 0
    emulator.reset()
    resumed = flow("run", path, env=KEY_ENV)
    assert resumed.code == 0, resumed
    assert [r for r in emulator.requests() if r["method"] == "POST"] == []


def _posts(emulator: Emulator) -> int:
    return len([r for r in emulator.requests() if r["method"] == "POST"
                and r["path"].startswith("/suno/submit")])


def _many_tasks(tmp_path: Path, emulator: Emulator, count: int) -> Path:
    path = tmp_path / "many.yaml"
    path.write_text(
        "version: 1\nconcurrency: 8\n"
        f"provider: {{base_url: \"{emulator.base_url}\", max_in_flight: {count}}}\n"
        f"vars:\n  items: {list(range(count))}\n"
        "steps:\n  lyrics:\n    uses: suno.generate_lyrics\n"
        "    matrix: {n: \"{{ vars.items }}\"}\n    with: {prompt: \"a jingle {{ matrix.n }}\"}\n")
    return path


@pytest.mark.slow
def test_kill_9_with_300_tasks_in_flight_then_a_rerun_resumes_them_all(
        tmp_path: Path, emulator: Emulator) -> None:
    """Issue 28: 300 tasks parked (no thread each) when the run is killed outright: the
    next run polls every one of them from the journal, and submits (pays) nothing again."""
    emulator.state.tasks.task_seconds = 1.5
    path = _many_tasks(tmp_path, emulator, 300)
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)],
                           env={**os.environ, **KEY_ENV}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while _posts(emulator) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the last answers read and journaled
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert _posts(emulator) == 300
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert result.out.count("resumed task") == 300
    assert _posts(emulator) == 300  # nothing submitted twice


@pytest.mark.slow
def test_ctrl_c_with_tasks_in_flight_exits_within_2_s(tmp_path: Path,
                                                       emulator: Emulator) -> None:
    emulator.state.tasks.task_seconds = 60.0
    path = _many_tasks(tmp_path, emulator, 50)
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)],
                           env={**os.environ, **KEY_ENV}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while _posts(emulator) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    stopped = time.monotonic()
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=10)
    took = time.monotonic() - stopped
    code = run.returncode
    assert code == 130 and took < 2.0, (code, took, output[-500:])
    assert "run again to resume" in output
