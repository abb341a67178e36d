"""`flow run` end to end: the real CLI against the emulator over HTTP on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import (
    BANNERS,
    BROKEN,
    KEY_ENV,
    LOGO_CHAIN,
    by_endpoint,
    every_byte_written,
    json_lines,
    kit_disagreements,
    recipe,
    sha256,
)

from conftest import CANARY_KEY, EXAMPLES, IGNORED, Emulator, flow
from flowrunner.kit.lockfile import read_lock


def test_brand_kit_example_runs_with_mock_and_no_key(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    result = flow("run", "examples/brand_assets.yaml", "--mock", cwd=tmp_path)
    assert result.code == 0, result
    assets = tmp_path / "examples" / "assets"
    for name in ["logo.png", "logo-transparent.png", "logo.svg", "print/logo-print.png",
                 "banners/banner-1820x1024.png", "banners/banner-2048x1024.png",
                 "banners/banner-1024x1024.png", "web/favicon.ico", "web/icon-512.png",
                 "social-card.png"]:
        assert (assets / name).is_file(), name
    assert (assets / "logo.png").read_bytes().startswith(b"\x89PNG")
    assert b"</svg>" in (assets / "logo.svg").read_bytes()
    lock = tmp_path / "examples" / "brand_assets.lock"
    first = lock.read_bytes()
    assert b"house_style" in first and b"banner[size=2048x1024]" in first
    again = flow("run", "examples/brand_assets.yaml", "--mock", cwd=tmp_path)
    assert again.code == 0, again
    assert "10 instances: 0 called, 10 cached" in again.out
    assert lock.read_bytes() == first


def test_requests_carry_rendered_params_auth_and_the_earlier_steps_file(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    calls = emulator.calls()
    assert [c["path"] for c in calls] == ["/recraft/v1/images/generations",
                                          "/recraft/v1/images/removeBackground",
                                          "/recraft/v1/images/vectorize"]
    assert all(c["authorization"] == f"Bearer {CANARY_KEY}" for c in calls)
    # the pinned model is sent explicitly; the gateway takes processing uploads as `file`
    assert calls[0]["json"] == {"prompt": "Logo for Acme", "style": "digital_illustration",
                                "size": "1024x1024", "model": "recraftv3"}
    assets = tmp_path / "assets"
    [upload] = calls[1]["files"]
    assert upload["field"] == "file"
    assert upload["content_type"] == "image/png"
    assert upload["sha256"] == sha256(assets / "logo.png")
    assert calls[2]["files"][0]["sha256"] == sha256(assets / "logo-clean.png")
    assert (assets / "logo.svg").read_bytes().rstrip().endswith(b"</svg>")
    # the key never lands anywhere the run wrote or printed
    assert CANARY_KEY not in result.both
    assert CANARY_KEY.encode() not in every_byte_written(tmp_path)


def test_rerun_makes_zero_requests(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    assert flow("run", path, env=KEY_ENV).code == 0
    emulator.reset()
    again = flow("run", path, env=KEY_ENV)
    assert again.code == 0, again
    assert emulator.requests() == []
    assert "5 instances: 0 called, 5 cached" in again.out


def test_429_is_retried_honouring_retry_after(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("429", count=2, retry_after=0)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 0, result
    assert by_endpoint(emulator.requests())["/recraft/v1/images/generations"] == 3


@pytest.mark.slow
def test_5xx_is_retried_then_reported_with_status_message_and_hint(tmp_path: Path,
                                                                   emulator: Emulator) -> None:
    emulator.fault("502", count=1)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    ok = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert ok.code == 0, ok
    emulator.reset()
    emulator.fault("500", count=50)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN, brand="Other")
    failed = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert failed.code == 1, failed
    # retries: 3 in the recipe's defaults → 4 attempts in all
    assert "HTTP 500 after 4 attempts: emulated HTTP 500" in failed.out
    assert "hint: the provider failed; run again later: finished steps are cached" in failed.out
    assert by_endpoint(emulator.requests())["/recraft/v1/images/generations"] == 4


def test_a_failed_step_skips_dependents_and_independent_branches_finish(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BROKEN)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    [line] = [ln for ln in result.out.splitlines() if ln.startswith("  broken ")]
    assert " FAILED  (" in line
    assert "HTTP 400" in result.out and "n: 99 must be at most 6" in result.out
    # a 400 is never retried
    assert by_endpoint(emulator.requests())["/recraft/v1/images/generations"] == 2
    assert (tmp_path / "assets" / "logo.svg").is_file()
    # the lock file records what finished (and the page shows it): they match the disk
    assert set(read_lock(tmp_path / "brand.lock").instances) == {"logo", "clean", "svg"}
    assert kit_disagreements(path) == []


@pytest.mark.slow
def test_dependents_of_a_failure_are_skipped(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("no-artifact")  # a failure that is not retried
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN,
                  extra="concurrency: 2\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "clean" in result.out and "skipped  (needs logo, which failed)" in result.out
    assert "svg" in result.out
    assert "1 failed, 2 skipped" in result.out


def test_bad_json_answer_is_a_clear_failure(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("bad-json")
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 1
    assert "HTTP 200 but the body is not JSON" in result.out
    assert "Traceback" not in result.both


def test_missing_artifact_in_answer_is_a_failure(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("no-artifact")
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 1
    assert "the answer has no artifact at data[*].url" in result.out


def test_truncated_download_is_retried_then_fails_when_it_persists(tmp_path: Path,
                                                                  emulator: Emulator) -> None:
    emulator.fault("truncate", count=1)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    ok = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert ok.code == 0, ok
    assert (tmp_path / "assets" / "logo.png").read_bytes().endswith(b"IEND\xaeB`\x82")
    emulator.fault("truncate", count=10)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN, brand="Other")
    bad = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert bad.code == 1, bad
    assert "truncated" in bad.out
    assert not list((tmp_path / ".flow" / "cache" / "tmp").iterdir())


def test_wrong_key_is_401_with_a_hint_and_never_printed(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    wrong = "sk-wrong-key-0123456789"
    result = flow("run", path, env={"ELKAPI_API_KEY": wrong})
    assert result.code == 1
    assert "HTTP 401: invalid token" in result.out
    assert "check the environment variable the recipe names" in result.out
    assert wrong not in result.both
    assert wrong.encode() not in every_byte_written(tmp_path)


def test_missing_key_fails_before_any_request(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path)
    assert result.code == 2
    assert result.err.startswith("error: the environment variable ELKAPI_API_KEY is not set")
    assert "--mock" in result.err
    assert emulator.requests() == []


@pytest.mark.slow
def test_task_endpoint_is_submitted_once_and_polled(tmp_path: Path, emulator: Emulator) -> None:
    emulator.pending_polls = 2  # what happens while the task runs
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: flux.generate
    with: {model: flux-pro-1.1, prompt: "A fox", width: 512, height: 512}
    save: hero.png
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    paths = [r["path"] for r in emulator.requests()]
    assert paths.count("/flux/v1/flux-pro-1.1") == 1
    assert paths.count("/flux/v1/get_result") == 3  # Pending, Pending, Ready
    assert (tmp_path / "assets" / "hero.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_failed_task_is_a_step_failure(tmp_path: Path, emulator: Emulator) -> None:
    emulator.fault("fail-task")
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: flux.generate
    with: {model: flux-dev, prompt: "A fox"}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1
    assert "ended with status 'Error': emulated task failure" in result.out


@pytest.mark.slow
def test_slow_provider_hits_the_step_timeout(tmp_path: Path, emulator: Emulator) -> None:
    emulator.state.latency = 3
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN,
                  extra="")
    text = path.read_text().replace("timeout: 30", "timeout: 1")
    path.write_text(text)
    result = flow("run", path, "--only", "logo", env=KEY_ENV)
    assert result.code == 1, result
    assert "timed out" in result.out or "timeout" in result.out


def test_only_runs_the_step_and_what_it_needs(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    result = flow("run", path, "--only", "clean", env=KEY_ENV)
    assert result.code == 0, result
    assert by_endpoint(emulator.requests()) == {"/recraft/v1/images/generations": 1,
                                                "/recraft/v1/images/removeBackground": 1}
    unknown = flow("run", path, "--only", "claen", env=KEY_ENV)
    assert unknown.code == 2
    assert "did you mean 'clean'?" in unknown.err


def test_dry_run_calls_nothing(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS)
    result = flow("run", path, "--dry-run")
    assert result.code == 0, result
    assert emulator.requests() == []
    assert "would call" in result.out


def test_json_events_for_machines(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    result = flow("run", path, "--json", env=KEY_ENV)
    assert result.code == 0, result
    events = json_lines(result.out)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("step_started") == 3 and kinds.count("step_finished") == 3
    finished = [e for e in events if e["event"] == "step_finished"]
    assert {e["instance"] for e in finished} == {"logo", "clean", "svg"}
    assert events[-1]["ok"] is True and events[-1]["called"] == 3
    cached = flow("run", path, "--json", env=KEY_ENV)
    assert [e["event"] for e in json_lines(cached.out)].count("step_cached") == 3


def test_invalid_recipe_exits_3_before_any_request(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.replace("vars.brand", "vars.brnd"))
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 3
    assert "brand.yaml:" in result.err and "unknown variable 'brnd'" in result.err
    assert emulator.requests() == []


def test_input_files_must_stay_inside_the_recipe_folder(tmp_path: Path, emulator: Emulator) -> None:
    from flowrunner.emulator.images import png

    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "secret.png").write_bytes(png(32, 32, "outside"))
    (project / "link.png").symlink_to(tmp_path / "secret.png")
    for value in ["../secret.png", "link.png", str(tmp_path / "secret.png")]:
        path = recipe(project, emulator.base_url, f"""
  clean:
    uses: recraft.remove_background
    with: {{image: "{value}"}}
""")
        result = flow("run", path, env=KEY_ENV)
        assert result.code == 1, result
        assert "is outside the recipe's folder" in result.out
    assert emulator.calls() == []


def test_missing_input_file_is_a_clear_failure(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  clean:
    uses: recraft.remove_background
    with: {image: brand/nope.png}
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1
    assert "no such file 'brand/nope.png'" in result.out
    assert "brand.yaml:" in result.out  # the failure points at the recipe line


def test_a_budget_is_a_ceiling_checked_before_any_call(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN + BANNERS, extra="concurrency: 1\n")
    # in the gateway's unit: the logo chain costs 1 + 0.25 + 0.25; each banner 1: 3.5 in all
    result = flow("run", path, "--max-credits", "2.5", env=KEY_ENV)
    assert result.code == 1, result
    assert emulator.requests() == []  # not one request, not even a free one
    assert "the uncached work is estimated at ~3.5 ElkAPI credits, over the budget of 2.5 " \
           "ElkAPI credits (--max-credits):" in result.out
    assert "  banner  2 calls  ~2 ElkAPI credits" in result.out
    assert "nothing was called: the run needs ~3.5 ElkAPI credits and the budget is 2.5 " \
           "ElkAPI credits" in result.err
    assert "hint: within the budget: `--only svg` (~1.5 ElkAPI credits)" in result.err
    assert not (tmp_path / "assets").exists() and not (tmp_path / "brand.lock").exists()
    # the hint works, and what it made is cached: only the banners are left to pay for
    assert flow("run", path, "--max-credits", "2.5", "--only", "svg", env=KEY_ENV).code == 0
    path.write_text(path.read_text().replace("concurrency: 1\n", "concurrency: 1\nbudget: 1.5\n"))
    again = flow("run", path, env=KEY_ENV)
    assert again.code == 1 and "over the budget of 1.5 ElkAPI credits (budget:)" in again.out
    assert "no step fits in 1.5 ElkAPI credits: raise budget:" in again.err
    path.write_text(path.read_text().replace("budget: 1.5", "budget: 2"))
    emulator.reset()
    assert flow("run", path, env=KEY_ENV).code == 0
    assert len(emulator.calls()) == 2  # the two banners; the logo chain was cached


def test_github_actions_annotations_and_step_summary(tmp_path: Path, emulator: Emulator) -> None:
    summary = tmp_path / "summary.md"
    github = {**KEY_ENV, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    bad = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.replace("vars.brand", "vars.brnd"),
                 name="bad.yaml")
    invalid = flow("validate", bad, env=github)
    assert invalid.code == 3
    assert f"::error file={bad},line=13,col=15,title=flow::steps.logo.with.prompt: unknown " \
           "variable 'brnd'" in invalid.out
    emulator.fault("503", count=100)
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN)
    path.write_text(path.read_text().replace("retries: 3", "retries: 0"))
    failed = flow("run", path, env=github)
    assert failed.code == 1
    assert f"::error file={path},line=10,col=3,title=flow%3A logo::POST" in failed.out
    emulator.reset()
    ok = flow("run", path, env=github)
    assert ok.code == 0
    text = summary.read_text()
    assert "### ❌ flow run" in text and "### ✅ flow run" in text
    assert "| `logo` | recraft.generate_image | called | 1 |" in text
    assert "- `assets/logo.svg`" in text


def test_ci_workflow_example_checks_pull_requests_frozen_through_the_action() -> None:
    import yaml

    workflow = yaml.safe_load((EXAMPLES / "ci" / "github-actions.yml").read_text())
    steps = workflow["jobs"]["assets"]["steps"]
    modes = {s["with"]["mode"]: s.get("if", "") for s in steps
             if "/flowrunner@" in s.get("uses", "")}
    # pull requests: `check` (flow run --frozen) and `diff`; the main branch: `run`
    assert "pull_request" in modes["check"] and "pull_request" in modes["diff"]
    assert "push" in modes["run"]
    action = (EXAMPLES.parent / "action" / "flow.sh").read_text()
    assert 'flow run "$INPUT_RECIPE" --frozen' in action


@pytest.mark.slow
def test_mock_takes_the_emulators_latency_and_faults(tmp_path: Path) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", LOGO_CHAIN.split("  clean:")[0])
    result = flow("run", path, "--mock", "--fault", "500:1", "--latency", "0.2")
    assert result.code == 0, result  # the 500 was retried
    assert "logo" in result.out and "called" in result.out
    wrong = flow("run", path, "--fault", "500")
    assert wrong.code == 2 and "they go with --mock" in wrong.err
    unknown = flow("run", path, "--mock", "--fault", "boom")
    assert unknown.code == 2 and "--fault boom: unknown fault" in unknown.err


def test_only_one_matrix_instance_runs_just_that_one(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, BANNERS)
    result = flow("run", path, "--only", "banner[size=2048x1024]", env=KEY_ENV)
    assert result.code == 0, result
    assert [c["json"]["size"] for c in emulator.calls()] == ["2048x1024"]
    assert "1 instance" in result.out.splitlines()[0]
    wrong = flow("run", path, "--only", "banner[size=999x1]", env=KEY_ENV)
    assert wrong.code == 2 and "--only banner[size=999x1]: no such instance" in wrong.err


def test_annotations_use_paths_relative_to_the_github_workspace(tmp_path: Path) -> None:
    sub = tmp_path / "recipes"
    sub.mkdir()
    bad = recipe(sub, "http://127.0.0.1:9", LOGO_CHAIN.replace("vars.brand", "vars.brnd"),
                 name="bad.yaml")
    result = flow("validate", bad, env={"GITHUB_ACTIONS": "true",
                                        "GITHUB_WORKSPACE": str(tmp_path)})
    assert result.code == 3
    assert "::error file=recipes/bad.yaml,line=13,col=15," in result.out


def test_a_mock_run_speaks_of_emulated_credits(tmp_path: Path) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", LOGO_CHAIN.split("  clean:")[0])
    result = flow("run", path, "--mock")
    assert result.code == 0, result
    assert "1 ElkAPI credits emulated, 0 ElkAPI credits saved by the cache" in result.out
    assert " spent" not in result.out


def test_http_step_uploads_files_and_sends_headers_but_never_the_key(tmp_path: Path,
                                                                      emulator: Emulator) -> None:
    outline = """
  outline:
    uses: http
    with:
      path: /recraft/v1/images/vectorize
      files: {file: "{{ steps.logo.files[0] }}"}
      body: {response_format: url}
      headers: {X-Request-Source: brand-kit}
      artifacts: image.url
    save: logo-outline.svg
"""
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.split("  clean:")[0] + outline)
    result = flow("run", path, "-vv", env=KEY_ENV)
    assert result.code == 0, result
    [call] = [c for c in emulator.calls() if c["path"].endswith("/vectorize")]
    assert call["content_type"].startswith("multipart/form-data")
    assert "http:   > X-Request-Source: brand-kit" in result.err
    logo = tmp_path / "assets" / "logo.png"
    assert [(f["field"], f["sha256"]) for f in call["files"]] == [("file", sha256(logo))]
    assert call["fields"] == {"response_format": "url"}
    assert (tmp_path / "assets" / "logo-outline.svg").read_bytes().lstrip().startswith(b"<")
    # the uploaded file is in the key: a new logo calls the outline again, a re-run does not
    emulator.reset()
    assert flow("run", path, env=KEY_ENV).code == 0 and emulator.calls() == []

    # the key's header is the provider's; a value holding the key is never sent
    path.write_text(path.read_text().replace("X-Request-Source: brand-kit",
                                             "Authorization: Bearer mine"))
    refused = flow("run", path, env=KEY_ENV)
    assert refused.code != 0 and "the header that carries the API key is set by flowrunner" \
        in refused.both
    path.write_text(path.read_text().replace("Authorization: Bearer mine",
                                             "X-Token: \"{{ vars.token }}\"").replace(
        "vars:\n", f"vars:\n  token: {CANARY_KEY}\n"))
    emulator.reset()
    leaked = flow("run", path, "--refresh", "outline", env=KEY_ENV)
    assert leaked.code == 1 and "not sent: a header value holds the API key" in leaked.out
    assert not any(c["path"].endswith("/vectorize") for c in emulator.calls())


def test_an_unchanged_rerun_shows_paths_from_where_it_runs(
        tmp_path: Path, emulator: Emulator) -> None:
    kit = tmp_path / "kit"
    kit.mkdir()
    path = recipe(kit, emulator.base_url, LOGO_CHAIN)
    assert flow("run", "brand.yaml", cwd=kit, env=KEY_ENV).code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = flow("run", path, cwd=elsewhere, env=KEY_ENV)  # answered from the run stamp
    assert again.code == 0 and "3 cached" in again.out, again
    assert f"assets: {kit / 'assets'}\n" in again.out
    assert f"lock file: {kit / 'brand.lock'}\n" in again.out
    inside = flow("run", "../brand.yaml", cwd=kit / "assets", env=KEY_ENV)
    assert "assets: .\n" in inside.out and "gallery: index.html\n" in inside.out, inside
    assert "ElkAPI credits saved" in inside.out


def test_the_emulator_refuses_an_http_upload_the_provider_would(tmp_path: Path,
                                                                emulator: Emulator) -> None:
    # the http step passes fields through as given; Recraft's vectorize takes no `note`,
    # and the emulator (which models Recraft's contract, not our catalog) says so
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.split("  clean:")[0] + """
  outline:
    uses: http
    with:
      path: /recraft/v1/images/vectorize
      files: {file: "{{ steps.logo.files[0] }}"}
      body: {note: kit}
      artifacts: image.url
    save: logo-outline.svg
""")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert "HTTP 400: unknown field 'note'" in result.out
    assert not (tmp_path / "assets" / "logo-outline.svg").exists()
