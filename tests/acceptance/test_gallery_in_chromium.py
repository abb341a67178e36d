"""The gallery page, opened in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, IGNORED, flow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def _run_example(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    result = flow("run", "examples/brand_assets.yaml", "--mock", cwd=tmp_path)
    assert result.code == 0, result
    assert "gallery: examples/assets/index.html" in result.out
    return tmp_path / "examples" / "assets" / "index.html"


def test_gallery_has_a_card_per_asset_and_needs_no_network(tmp_path: Path) -> None:
    page = _run_example(tmp_path).read_text()
    assert page.count('<article class="card">') == 12
    for name in ["logo.png", "logo.svg", "print/logo-print.png",
                 "banners/banner-2048x1024.png"]:
        assert f'<img src="{name}"' in page
    assert "size=2048x1024" in page and "recraft.crisp_upscale" in page
    assert "Minimal flat logo mark for Acme Fox Coffee" in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert '<span class="badge called">called</span>' in page
    again = flow("run", "examples/brand_assets.yaml", "--mock", "--no-cache", cwd=tmp_path)
    assert again.code == 0
    rebuilt = flow("report", "examples/brand_assets.yaml", cwd=tmp_path)
    assert rebuilt.code == 0 and "(12 assets)" in rebuilt.out


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs "
                                             "Debian's chromium)")
@pytest.mark.slow
def test_gallery_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    page = _run_example(tmp_path)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    # every image loaded (the .ico too)
    assert '<body data-images="12" data-loaded="12">' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1280,900",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 900)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 200  # gradients, text and cards: far from a blank page
