"""Credits that add up: an answer that names no cost is booked at the catalog's price and
marked estimated, in the summary, --json, the lock file, the gallery and the budget, so a
plan and its run agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from helpers import KEY_ENV

from conftest import EXAMPLES, IGNORED, Emulator, flow


def _launch_kit(tmp_path: Path, emulator: Emulator) -> Path:
    """The launch kit, its provider the test's emulator (whose tasks finish at once)."""
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    path = tmp_path / "examples" / "launch_kit.yaml"
    path.write_text(path.read_text().replace("https://api.elkapi.com", emulator.base_url, 1))
    return path


def test_the_launch_kits_plan_and_run_agree_and_say_estimated(tmp_path: Path,
                                                              emulator: Emulator) -> None:
    path = _launch_kit(tmp_path, emulator)
    plan = flow("plan", path, "--json")
    estimate = json.loads(plan.out)["estimated_credits"]
    assert estimate > 40
    run = flow("run", path, "--json", env=KEY_ENV)
    assert run.code == 0, run
    finished = json.loads(run.out.strip().splitlines()[-1])
    assert finished["credits_spent"] == estimate
    assert finished["credits_estimated"] is True
    steps = [json.loads(line) for line in run.out.strip().splitlines()[:-1]]
    jingle = next(s for s in steps if s.get("instance") == "jingle"
                  and s["event"] == "step_finished")
    assert jingle["credits"] == 10 and jingle["credits_estimated"] is True
    text = flow("run", path, "--no-cache", env=KEY_ENV)
    assert f"~{estimate:g} ElkAPI credits spent, estimated" in text.out
    lock = yaml.safe_load((path.with_suffix(".lock")).read_text())
    assert lock["instances"]["jingle"]["credits"] == 10
    assert lock["instances"]["jingle"]["credits_estimated"] is True
    assert sum(e["credits"] for e in lock["instances"].values()) == estimate
    gallery = (path.parent / "launch" / "index.html").read_text()
    assert "~10 ElkAPI credits, estimated" in gallery
    # cached: the plan shows the same figures as spent
    again = json.loads(flow("plan", path, "--json").out)
    assert sum(i["credits"] for i in again["instances"]) == estimate


def test_a_budget_holds_the_estimated_figure(tmp_path: Path, emulator: Emulator) -> None:
    path = _launch_kit(tmp_path, emulator)
    estimate = json.loads(flow("plan", path, "--json").out)["estimated_credits"]
    refused = flow("run", path, "--max-credits", str(estimate - 1), env=KEY_ENV)
    assert refused.code != 0 and "nothing was called" in refused.err
    assert emulator.requests() == []
    assert flow("run", path, "--max-credits", str(estimate), env=KEY_ENV).code == 0


def test_prices_per_model_and_by_duration_and_mode(tmp_path: Path) -> None:
    entry = json.loads((Path(__file__).parents[2] / "schemas" / "endpoints" / "kling" /
                        "text_to_video.json").read_text())
    entry["id"] = "kling.priced_video"
    entry["price"] = {"credits": 20, "models": {"kling-v2-master": 100},
                      "scale": {"duration": {"10": 2}, "mode": {"pro": 1.5}}}
    (tmp_path / "priced.json").write_text(json.dumps(entry))
    (tmp_path / "clips.yaml").write_text(
        "version: 1\ncatalog: [priced.json]\nsteps:\n"
        "  short:\n    uses: kling.priced_video\n    with: {prompt: a fox, duration: '5'}\n"
        "  long:\n    uses: kling.priced_video\n    with: {prompt: a fox, duration: '10'}\n"
        "  master:\n    uses: kling.priced_video\n"
        "    with: {prompt: a fox, model_name: kling-v2-master, mode: pro, duration: '10'}\n")
    plan = json.loads(flow("plan", tmp_path / "clips.yaml", "--mock", "--json").out)
    credits = {i["instance"]: i["credits"] for i in plan["instances"]}
    assert credits == {"short": 20, "long": 40, "master": 300}, plan


def test_the_catalog_prices_sora_by_model_seconds_and_size() -> None:
    """new-api's defaults (docs/provider-facts-2026-12.md §12): $0.30 a second for sora-2,
    $0.50 for sora-2-pro, × 1.666667 at 1792 sizes; 4 s by default."""
    from flowrunner.catalog.entries import get_endpoint

    sora = get_endpoint("sora.generate_video")
    assert sora.estimate_credits({"model": "sora-2"}) == 120
    assert sora.estimate_credits({"model": "sora-2", "seconds": "8"}) == 240
    assert round(sora.estimate_credits({"model": "sora-2-pro", "seconds": 12,
                                        "size": "1792x1024"})) == 1000
    assert get_endpoint("midjourney.video").estimate_credits({}) == 80
