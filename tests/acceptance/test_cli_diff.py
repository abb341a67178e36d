"""`flow diff` against a git base made in the test: what changed, why, and the review page."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, IGNORED, flow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]
PROMPT_STEPS = {"logo", "banner[size=1820x1024]", "banner[size=2048x1024]",
                "banner[size=1024x1024]"}
DOWNSTREAM = {"logo_transparent", "logo_svg", "logo_print", "favicons", "social_card"}


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                          check=True)
    return done.stdout


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The brand kit in a git repository: run and committed, then the brand renamed and run
    again (not committed)."""
    folder = tmp_path_factory.mktemp("repo")
    shutil.copytree(EXAMPLES, folder, ignore=IGNORED, dirs_exist_ok=True)
    _git(folder, "init", "-q")
    _git(folder, "config", "user.email", "ci@example.invalid")
    _git(folder, "config", "user.name", "CI")
    (folder / ".gitignore").write_text(".flow/\n")
    assert flow("run", "brand_assets.yaml", "--mock", cwd=folder).code == 0
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "the kit")
    recipe = folder / "brand_assets.yaml"
    recipe.write_text(recipe.read_text().replace("brand: Acme Fox Coffee",
                                                 "brand: Globex Owl Tea"))
    assert flow("run", "brand_assets.yaml", "--mock", cwd=folder).code == 0
    return folder


@pytest.mark.slow
def test_diff_lists_exactly_the_changed_instances_and_names_the_variable(kit: Path) -> None:
    result = flow("diff", "brand_assets.yaml", cwd=kit)
    assert result.code == 0, result
    lines = [line for line in result.out.splitlines() if line.startswith("changed ")]
    changed = {line.split()[1] for line in lines}
    assert changed == PROMPT_STEPS | DOWNSTREAM  # house_style's inputs did not change
    logo = next(line for line in lines if line.split()[1] == "logo")
    assert 'with.prompt: "…t logo mark for Acme Fox Coffee: a friendly red…" → ' \
           '"…t logo mark for Globex Owl Tea: a friendly red…"' in logo
    assert '(vars.brand: "Acme Fox Coffee" → "Globex Owl Tea")' in logo
    clean = next(line for line in lines if line.split()[1] == "logo_transparent")
    assert "with.image: uploaded file changed" in clean and "logo's file" in clean
    assert result.out.rstrip().endswith("· assets/diff.html")
    assert "9 changed, 0 added, 0 removed against HEAD (" in result.out
    assert flow("diff", "brand_assets.yaml", "--exit-code", cwd=kit).code == 1


@pytest.mark.slow
def test_diff_json_lines_and_the_step_summary(kit: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = flow("diff", "brand_assets.yaml", "--json", cwd=kit,
                  env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.code == 0, result
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert {r["instance"] for r in rows} == PROMPT_STEPS | DOWNSTREAM
    logo = next(r for r in rows if r["instance"] == "logo")
    assert logo["change"] == "changed" and logo["variables"][0].startswith("vars.brand: ")
    assert logo["before"][0]["sha256"] != logo["after"][0]["sha256"]
    text = summary.read_text()
    assert text.startswith("### flow diff `brand_assets.yaml` against `HEAD`")
    assert "9 instance(s) differ · the change costs ~" in text
    assert "| `logo` | changed | with.prompt:" in text


def test_nothing_changed_is_said_and_exits_0_with_exit_code(kit: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _git(kit, "clone", "-q", str(kit), str(clone))
    result = flow("diff", "brand_assets.yaml", "--exit-code", cwd=clone)
    assert result.code == 0, result
    assert "0 changed, 0 added, 0 removed against HEAD" in result.out


@pytest.mark.slow
def test_before_comes_from_the_commit_when_the_cache_is_gone(kit: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(kit, copy)
    shutil.rmtree(copy / ".flow")  # a fresh clone with the new run's files, no cache
    assert flow("diff", "brand_assets.yaml", cwd=copy).code == 0
    page = (copy / "assets" / "diff.html").read_text()
    # every pair of the 9 instances (favicons makes several files) has its before image
    assert page.count('<figure class="before"><div class="box"><img') == \
        page.count('<figure class="before">') >= 9
    assert "not in the cache, and not committed" not in page


def test_diff_against_the_plan_needs_no_run(kit: Path, tmp_path: Path) -> None:
    copy = tmp_path / "planned"
    _git(kit, "clone", "-q", str(kit), str(copy))
    recipe = copy / "brand_assets.yaml"
    recipe.write_text(recipe.read_text().replace("1820x1024, ", ""))
    result = flow("diff", "brand_assets.yaml", "--plan", cwd=copy)
    assert result.code == 0, result
    assert "removed  banner[size=1820x1024]" in result.out
    # the cache of a real run is empty here: the key is still known, its result is not
    page = (copy / "assets" / "diff.html").read_text()
    assert "removed" in page


def test_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "kit", ignore=IGNORED)
    result = flow("diff", "kit/brand_assets.yaml", cwd=tmp_path)
    assert result.code == 2
    assert "is not in a git repository" in result.err
    assert "hint: flow diff compares with a git revision" in result.err


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (.ci/run installs "
                                             "Debian's chromium)")
def test_the_review_page_loads_every_image_in_chromium(kit: Path, tmp_path: Path) -> None:
    assert flow("diff", "brand_assets.yaml", cwd=kit).code == 0
    page = kit / "assets" / "diff.html"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p'}",
                          "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    images = int(dom.split('data-images="')[1].split('"')[0])
    loaded = int(dom.split('data-loaded="')[1].split('"')[0])
    assert images == loaded and images >= 18  # before and after for each of the 9, + diffs
    assert dom.count('<figure class="before">') == dom.count('<figure class="after">') >= 9
