"""How `flow` fails: an unexpected error leaves a crash log and its own exit status; bad
limits in the environment and --no-cache runs that fail leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import KEY_ENV, LOGO_CHAIN, recipe

from conftest import EXAMPLES, Emulator, flow, flow_in_process


def test_an_unexpected_error_writes_a_crash_log_and_exits_70(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flowrunner.commands.validate as validate

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(validate, "validate_files", broken)
    monkeypatch.setenv("ELKAPI_API_KEY", "sk-secret-value-123")
    path = recipe(tmp_path, "http://127.0.0.1:9", LOGO_CHAIN)
    result = flow_in_process("validate", path)
    assert result.code == 70
    log = tmp_path / ".flow" / "crash.log"
    lines = result.err.strip().splitlines()
    assert lines == [
        "flow: an unexpected error occurred (a bug in flowrunner): RuntimeError: a bug",
        f"  the details are in {log}: please attach that file to a bug report"]
    text = log.read_text()
    assert text.startswith("flowrunner 0.1.0 crashed: RuntimeError: a bug\n")
    assert f"command: flow validate {path}" in text and "platform: " in text
    assert "Traceback (most recent call last)" in text and "raise RuntimeError" in text
    assert "sk-secret-value-123" not in text
    assert "run again" not in result.err  # never advise paying twice


def _crash_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    import flowrunner.commands.validate as validate

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(validate, "validate_files", broken)


def test_the_crash_log_blanks_the_variables_a_recipe_names_and_proxy_passwords(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flowrunner.commands.validate as validate

    monkeypatch.setenv("TEAM_RECRAFT_CRED", "rc-team-value-4242")  # not a key-like name
    monkeypatch.setenv("HTTPS_PROXY", "http://me:proxy-pass-77@proxy.corp:3128")

    def leaky(*_: object, **__: object) -> int:  # a bug whose message holds both
        raise RuntimeError("a bug near rc-team-value-4242 via "
                           "http://me:proxy-pass-77@proxy.corp:3128")

    monkeypatch.setattr(validate, "validate_files", leaky)
    path = recipe(tmp_path, "http://127.0.0.1:9", LOGO_CHAIN,
                  extra="providers:\n  team: {base_url: 'http://127.0.0.1:9', "
                        "api_key_env: TEAM_RECRAFT_CRED}\n")
    result = flow_in_process("--traceback", "validate", path)
    assert result.code == 70
    text = (tmp_path / ".flow" / "crash.log").read_text()
    assert "a bug near" in text and "a bug near" in result.err
    for shown in (text, result.err):
        assert "rc-team-value-4242" not in shown and "proxy-pass-77" not in shown


def test_a_crash_log_never_writes_through_a_planted_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _crash_validate(monkeypatch)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = recipe(tmp_path, "http://127.0.0.1:9", LOGO_CHAIN)
    (tmp_path / ".flow").mkdir()
    (tmp_path / ".flow" / "crash.log").symlink_to(victim)
    assert flow_in_process("validate", path).code == 70
    assert victim.read_text() == "precious"
    assert not (tmp_path / ".flow" / "crash.log").is_symlink()
    # with no folder of its own to write in, a new file in the temp folder (never a
    # fixed name another user could plant)
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    import flowrunner.run.crashlog as crashlog

    monkeypatch.setattr(crashlog, "_candidates", lambda argv: [])
    (tmp_path / "tmp" / "crash.log").symlink_to(victim)
    written = crashlog.write_crash_log(RuntimeError("x"), ["validate"])
    assert written is not None and written.parent == tmp_path / "tmp"
    assert written.name != "crash.log" and oct(written.stat().st_mode)[-3:] == "600"
    assert victim.read_text() == "precious"


def test_nothing_is_written_into_the_installed_package(tmp_path: Path) -> None:
    """The package's folder is pip's: a run never adds files there (issue 24, defect 9)."""
    import flowrunner

    package = Path(flowrunner.__file__).parent
    before = {p for p in package.rglob("*") if "__pycache__" not in p.parts or
              not p.name.endswith(".pyc")}
    result = flow("validate", EXAMPLES / "brand_assets.yaml",
                  env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert result.code == 0, result
    after = {p for p in package.rglob("*") if "__pycache__" not in p.parts or
             not p.name.endswith(".pyc")}
    assert after == before
    assert not list(package.rglob("*.marshal"))  # nor left by an older version


def test_traceback_flag_prints_it_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flowrunner.commands.schema as schema

    monkeypatch.setattr(schema, "print_schema", lambda **_: 1 / 0)
    result = flow_in_process("--traceback", "schema", cwd=tmp_path)
    assert result.code == 70
    assert "Traceback (most recent call last)" in result.err
    assert "ZeroDivisionError" in result.err
    assert (tmp_path / ".flow" / "crash.log").is_file()


def test_a_bad_size_limit_in_the_environment_is_a_usage_error(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, env={**KEY_ENV, "FLOW_MAX_ARTIFACT_MB": "big"})
    assert result.code == 2, result
    assert "FLOW_MAX_ARTIFACT_MB='big' is not a positive whole number of megabytes" in result.err
    assert "Traceback" not in result.both and "unexpected" not in result.both
    assert emulator.requests() == []


@pytest.mark.slow
def test_no_cache_leaves_no_scratch_folder_when_a_step_fails(
        tmp_path: Path, emulator: Emulator) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    emulator.fault("no-artifact")  # a failure that is not retried
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--no-cache", env={**KEY_ENV, "TMPDIR": str(scratch)})
    assert result.code == 1, result
    assert [p.name for p in scratch.iterdir() if p.name.startswith("flow-nocache-")] == []


@pytest.mark.slow
def test_cache_ls_and_clear_find_the_recipes_cache_from_anywhere(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(EXAMPLES, tmp_path / "kit", ignore=shutil.ignore_patterns(
        ".flow", "assets", "*.lock"))
    recipe_path = tmp_path / "kit" / "hero_flux.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert flow("run", recipe_path, "--mock", cwd=elsewhere).code == 0
    listed = flow("cache", "ls", recipe_path, cwd=elsewhere)
    assert listed.code == 0 and "flux.generate" in listed.out, listed
    assert str(tmp_path / "kit" / ".flow" / "cache") in listed.out
    cleared = flow("cache", "clear", recipe_path, cwd=elsewhere)
    assert cleared.code == 0 and cleared.out.startswith("removed "), cleared
    assert "removed 0" not in cleared.out
    after = flow("cache", "ls", recipe_path, cwd=elsewhere)
    assert after.out.startswith("no cache entries in "), after


def test_a_save_path_that_fails_to_render_fails_before_the_call(tmp_path: Path,
                                                                emulator: Emulator) -> None:
    steps = """
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo for {{ vars.brand }}", size: 1024x1024}
    save: logo.png
  svg:
    uses: recraft.vectorize
    with: {image: "{{ steps.logo.files[0] }}"}
    save: "logo-{{ steps.logo.outputs.credits + 'x' }}.svg"
"""
    path = recipe(tmp_path, emulator.base_url, steps)
    assert flow("validate", path).code == 0  # it reads a step's result: known only at run time
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "svg.save: TypeError" in result.out, result
    assert [r["operation"] for r in emulator.calls() if r.get("operation")] == \
        ["recraft.generations"]  # the vectorize call was never paid for
