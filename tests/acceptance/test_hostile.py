"""Hostile input and misbehaving servers: every defence here has an attack that tests it.

A recipe from a pull request runs in CI with a paid key in the environment: it must never
leak the key, read or write outside the project, hang the job or corrupt the cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import (
    BANNERS,
    KEY_ENV,
    LOGO_CHAIN,
    by_endpoint,
    every_byte_written,
    kit_disagreements,
    recipe,
)

from conftest import CANARY_KEY, Emulator, flow


def _no_partial_files(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if p.name.startswith((".tmp-", "part-"))
                 and "tmp" not in p.parent.name]
    assert leftovers == []


# --- secrets --------------------------------------------------------------------------


def test_key_echoed_by_the_server_is_redacted(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("echo-auth")
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 1
    assert "Authorization: Bearer ***" in result.out  # the provider's words, key removed
    assert CANARY_KEY not in result.both


def test_a_one_letter_key_does_not_mangle_urls_in_debug_logging(tmp_path: Path,
                                                                emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    verbose = flow("run", path, "--only", "logo", "-vv", env={"ELKAPI_API_KEY": "a"})
    assert verbose.code == 1, verbose  # the gateway does not take it, and says so
    assert f"http: POST {emulator.base_url}/recraft/v1/images/generations -> 401" in verbose.err
    assert "http:   > Authorization: Bearer ***" in verbose.err
    assert "***" not in verbose.err.replace("Bearer ***", "")


def test_key_never_appears_in_debug_logging_json_events_or_files(tmp_path: Path,
                                                                 emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    verbose = flow("run", path, "-vv", env=KEY_ENV)
    assert verbose.code == 0, verbose
    assert "http: POST http://127.0.0.1" in verbose.err  # -vv does log the requests
    # and their headers: the one that carries the key shows only its scheme
    assert "http:   > Authorization: Bearer ***" in verbose.err
    assert "http:   > Content-Type: application/json" in verbose.err
    assert "http:   < Content-Type: application/json" in verbose.err
    events = flow("run", path, "--json", "--refresh", "logo", env=KEY_ENV)
    assert events.code == 0
    for text in (verbose.out, verbose.err, events.out, events.err):
        assert CANARY_KEY not in text
    assert CANARY_KEY.encode() not in every_byte_written(tmp_path)


# --- files ----------------------------------------------------------------------------


def test_matrix_value_cannot_steer_a_save_outside(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  art:
    uses: recraft.generate_image
    matrix: {name: [ok, ../../escaped]}
    with: {prompt: art}
    save: "{{ matrix.name }}.png"
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 3
    assert "save path '../../escaped.png' escapes the output folder" in result.err
    assert emulator.requests() == []


def test_response_value_cannot_steer_a_save_outside(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  logo:
    uses: recraft.generate_image
    with: {prompt: logo}
    outputs: {name: "{{ '../../' ~ response.data[0].url[-6:] }}"}
  copy:
    uses: recraft.remove_background
    with: {image: "{{ steps.logo.files[0] }}"}
    save: "{{ steps.logo.outputs.name }}.png"
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "escapes the output folder" in result.out
    assert not list(tmp_path.parent.glob("*.png")) and not list(tmp_path.glob("*.png"))


def test_save_through_a_symlink_out_of_the_output_folder_is_refused(tmp_path: Path,
                                                                   emulator: Emulator) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "logo.png").symlink_to(outside)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 1
    assert "escapes the output folder" in result.out
    assert outside.read_text() == "keep me"


def test_artifact_urls_must_be_http(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("file-url")
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 1
    assert "refusing artifact URL 'file:///etc/passwd'" in result.out
    assert "root:" not in result.both


# --- templates and YAML ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ vars.brand.__class__.__init__.__globals__ }}",
    "{{ 'x' * 100000000 }}",
    # issue 24: bounded while rendering, not after (these ran 10 s, forever, or allocated)
    "{% for i in range(2000) %}{% for j in range(2000) %}x{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x'|center(3000000) }}",
    "{{ 'x'.ljust(3000000) }}",
    "{{ '%3000000s' % 'x' }}",
    "{{ '{:>3000000}'.format('x') }}",
    "{% set a = 'x' * 900000 %}{{ a ~ a }}",
    "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{{ range(1000000000)|join }}",
    # found by review: towers of powers, nested repetition, sums of lists
    "{{ ((((9**64)**64)**64)**64)**64 }}",
    "{{ [[0]*999999]*999999 }}",
    "{{ ([[0]*999999]*999999) | tojson }}",
    "{{ ([[1]*1000]*1000) | sum(start=[]) | length }}",
    "x{{ (['x'*999999]*999999) ~ '' }}",
])
def test_template_escapes_and_bombs_are_invalid_recipes(tmp_path: Path, emulator: Emulator,
                                                        template: str) -> None:
    path = recipe(tmp_path, emulator.base_url, f"""
  logo:
    uses: recraft.generate_image
    with: {{prompt: "{template}"}}
""")
    result = flow("validate", path, timeout=60)
    assert result.code == 3, result
    assert "brand.yaml:12:" in result.err  # located at the prompt's line
    assert "not allowed" in result.err or "limit" in result.err or "too large" in result.err
    assert "Traceback" not in result.both


@pytest.mark.slow
def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    rows = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        rows.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(rows) + "\nsteps: {}\n")
    result = flow("validate", "bomb.yaml", cwd=tmp_path, timeout=60)
    assert result.code == 3
    assert "alias bomb" in result.err


# --- servers that misbehave -----------------------------------------------------------


def _timeout(path: Path, seconds: int) -> None:
    path.write_text(path.read_text().replace("timeout: 30", f"timeout: {seconds}"))


@pytest.mark.slow
def test_dripping_answer_hits_the_step_timeout(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("slow-json")
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    _timeout(path, 2)
    result = flow("run", path, "--only", "logo", env=KEY_ENV, timeout=60)
    assert result.code == 1
    assert "did not arrive before the step's timeout" in result.out


@pytest.mark.slow
def test_dripping_download_hits_the_step_timeout(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("slow-body", count=5)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    _timeout(path, 2)
    result = flow("run", path, "--only", "logo", env=KEY_ENV, timeout=60)
    assert result.code == 1
    assert "timed out" in result.out or "timeout" in result.out
    assert not (tmp_path / "assets" / "logo.png").exists()


def test_oversized_answer_and_artifact_are_refused(tmp_path: Path, emulator: Emulator) -> None:
    emulator.state.faults.append({"kind": "huge-json", "count": 1, "bytes": 3 << 20})
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    env = {**KEY_ENV, "FLOW_MAX_ANSWER_MB": "1", "FLOW_MAX_ARTIFACT_MB": "1"}
    result = flow("run", path, "--only", "logo", env=env)
    assert result.code == 1
    assert "the answer is larger than 1 MB" in result.out
    big = recipe(tmp_path, emulator.base_url, """
  big:
    uses: http
    with: {method: POST, path: /_emulator/big, body: {bytes: 3000000}, artifacts: url}
""", name="big.yaml")
    result = flow("run", big, env=env)
    assert result.code == 1
    assert "artifact is larger than the cap" in result.out
    assert not [p for p in (tmp_path / ".flow" / "cache" / "tmp").iterdir()]


def test_redirect_to_another_host_does_not_carry_the_key(
        tmp_path: Path, emulator: Emulator) -> None:
    from flowrunner.emulator.server import make_server

    other = make_server("127.0.0.2", 0)
    threading.Thread(target=other.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    try:
        emulator.state.faults.append({"kind": "redirect", "count": 1,
                                      "location": f"http://127.0.0.2:{other.server_port}"})
        path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
        result = flow("run", path, "--only", "logo", env=KEY_ENV)
        assert result.code == 1
        assert "HTTP 401" in result.out
        [forwarded] = other.state.requests
        assert forwarded["path"] == "/recraft/v1/images/generations"
        assert forwarded["authorization"] is None
    finally:
        other.shutdown()
        other.server_close()


@pytest.mark.slow
def test_task_that_never_finishes_times_out_and_keeps_its_journal(tmp_path: Path,
                                                                  emulator: Emulator) -> None:
    emulator.fault("stuck-task")
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: flux.generate
    with: {model: flux-dev, prompt: "A fox"}
""")
    _timeout(path, 4)
    result = flow("run", path, env=KEY_ENV, timeout=60)
    assert result.code == 1
    assert "still 'Pending' when the timeout ran out" in result.out
    assert "resumes polling the same task" in result.out
    assert len(list((tmp_path / ".flow" / "cache" / "tasks").glob("*.json"))) == 1


@pytest.mark.slow
def test_429_storm_gives_up_within_the_step_timeout(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("429", count=1000, retry_after=1)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    _timeout(path, 3)
    path.write_text(path.read_text().replace("retries: 3", "retries: 20"))
    started = time.monotonic()
    result = flow("run", path, "--only", "logo", env=KEY_ENV, timeout=60)
    assert result.code == 1
    assert "HTTP 429" in result.out
    assert "lower `concurrency` or set provider.rate_limit" in result.out
    assert time.monotonic() - started < 30  # a hang guard, not a timing claim
    assert 1 < by_endpoint(emulator.requests())["/recraft/v1/images/generations"] <= 4


# --- process faults -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_cleanly_and_the_next_run_resumes(
        tmp_path: Path, emulator: Emulator, sig: int, code: int) -> None:
    emulator.state.latency = 0.5
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN, extra="concurrency: 1\n",
                  sizes="[1024x1024, 2048x1024, 1820x1024]")
    path.write_text(path.read_text() + """
  banner:
    uses: recraft.generate_image
    matrix: {size: "{{ vars.sizes }}"}
    with: {prompt: "Banner", size: "{{ matrix.size }}"}
    save: "banner-{{ matrix.size }}.png"
""")
    env = dict(os.environ, **KEY_ENV)
    run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(emulator.calls()) < 2:
        time.sleep(0.02)
    run.send_signal(sig)
    out, err = run.communicate(timeout=30)
    assert run.returncode == code, (out, err)
    assert "interrupted" in (out + err)
    assert "Traceback" not in err
    _no_partial_files(tmp_path)
    assert kit_disagreements(path) == []  # the lock file records what was placed
    emulator.state.latency = 0
    finished = flow("run", path, env=KEY_ENV)
    assert finished.code == 0, finished
    bodies = [json.dumps(c.get("json") or c.get("files"), sort_keys=True)
              for c in emulator.calls()]
    assert len(set(bodies)) == 6  # every instance called, none twice once it had finished
    assert len(bodies) <= 6 + 1   # at most the one in flight at the signal is repeated


def test_disk_full_is_a_clear_error_with_nothing_half_written(tmp_path: Path,
                                                              emulator: Emulator) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        path = recipe(small, emulator.base_url, LOGO_CHAIN + """
  wide:
    uses: recraft.generate_image
    with: {prompt: wide, size: 2048x1024}
    save: wide.png
""")
        result = flow("run", path, env=KEY_ENV)
        assert result.code == 1, result
        assert "No space left on device" in result.out or "free some disk space" in result.out
        assert "Traceback" not in result.both
        for saved in (small / "assets").rglob("*.png") if (small / "assets").exists() else []:
            assert saved.read_bytes().endswith(b"IEND\xaeB`\x82")  # whole, or not there
        _no_partial_files(small)
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.slow
def test_an_interrupt_says_so_once_and_counts_the_calls_it_stopped(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    path = recipe(tmp_path, "https://api.elkapi.com", BANNERS,
                  sizes="[1024x1024, 2048x1024, 1820x1024]")
    proc = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path), "--mock",
                             "--latency", "5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip() == "error: stopped by SIGTERM"
    assert out.count("interrupted") == 1
    assert "interrupted: 3 calls in flight stopped; finished steps are cached" in out
