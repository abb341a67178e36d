"""The gallery page, opened in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CANARY_KEY, EXAMPLES, IGNORED, Emulator, flow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def _run_example(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    result = flow("run", "examples/brand_assets.yaml", "--mock", cwd=tmp_path)
    assert result.code == 0, result
    assert "gallery: examples/assets/index.html" in result.out
    return tmp_path / "examples" / "assets" / "index.html"


@pytest.mark.slow
def test_gallery_is_a_review_page_of_the_kit_and_needs_no_network(tmp_path: Path) -> None:
    page = _run_example(tmp_path).read_text()
    assert page.count('<article class="card"') == 10  # one per instance, the style's too
    for name in ["logo.png", "logo.svg", "print/logo-print.png",
                 "banners/banner-2048x1024.png"]:
        assert f'<img src="{name}"' in page
    assert "size=2048x1024" in page and "recraft.crisp_upscale" in page
    assert "Minimal flat logo mark for Acme Fox Coffee" in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    # the header describes the kit from the lock file, and says the emulator made it
    assert "12 assets from 10 instances of 8 steps, as recorded in brand_assets.lock" in page
    assert '<span class="badge mock">mock</span>' in page
    assert '<span class="badge local">local</span>' in page  # favicons, social card
    # grouped by step with the recipe's descriptions; sizes in pixels; lineage; short ids
    assert '<section class="step" id="step-banner">' in page
    assert '<button type="button" data-folder="banners">banners (3)</button>' in page
    assert "The primary logo mark, in the house style." in page
    assert "1024×1024 px" in page
    assert 'made from <a href="logo.png">logo.png</a>' in page
    assert 'src="../brand/' in page  # the style's reference boards
    style_id = page.split("style_id: <span title=\"")[1].split("\"")[0]
    assert len(style_id) == 36 and f">{style_id[:8]}…<" in page
    again = flow("run", "examples/brand_assets.yaml", "--mock", "--no-cache", cwd=tmp_path)
    assert again.code == 0
    rebuilt = flow("report", "examples/brand_assets.yaml", cwd=tmp_path)
    assert rebuilt.code == 0 and "(12 assets)" in rebuilt.out


@pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (.ci/run installs "
                                             "Debian's chromium)")
@pytest.mark.slow
def test_gallery_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    page = _run_example(tmp_path)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    # every image loaded (the .ico too), and every thumbnail box has one size
    assert 'data-images="12" data-loaded="12"' in dom
    sizes = dom.split('data-thumb-sizes="')[1].split('"')[0]
    assert len(sizes.split()) == 1, sizes
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1280,900",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 900)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 200  # gradients, text and cards: far from a blank page


@pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (.ci/run installs "
                                             "Debian's chromium)")
@pytest.mark.slow
def test_the_launch_kit_plays_its_video_and_audio_in_headless_chromium(
        tmp_path: Path, emulator: Emulator) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    kit = tmp_path / "examples" / "launch_kit.yaml"  # against the test's emulator: no waits
    kit.write_text(kit.read_text().replace("https://api.elkapi.com", emulator.base_url, 1))
    result = flow("run", "examples/launch_kit.yaml", cwd=tmp_path,
                  env={"ELKAPI_API_KEY": CANARY_KEY})
    assert result.code == 0, result
    page = tmp_path / "examples" / "launch" / "index.html"
    text = page.read_text()
    assert text.count("<video controls") == 1 and text.count("<audio controls") == 2
    dom = subprocess.run([CHROMIUM, *FLAGS, "--user-data-dir=" + str(tmp_path / "profile"),
                          "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    # the teaser (H.264 MP4), the jingle (WAV) and the tagline (MP3) decoded: a duration
    # and metadata ready for each; the mood board, key visual and poster images loaded,
    # and the jingle's cover
    assert 'data-media="3" data-media-ready="3"' in dom, dom[:400]
    assert 'data-images="4" data-loaded="4"' in dom
    assert '<img class="cover" src="jingle-a.poster.png"' in text
