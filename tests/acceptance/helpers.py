"""Recipes for end-to-end tests, pointed at a live emulator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from conftest import CANARY_KEY

KEY_ENV = {"ELKAPI_API_KEY": CANARY_KEY}

LOGO_CHAIN = """
  logo:
    uses: recraft.generate_image
    with:
      prompt: "Logo for {{ vars.brand }}"
      style: digital_illustration
      size: 1024x1024
    save: logo.png
  clean:
    uses: recraft.remove_background
    with:
      image: "{{ steps.logo.files[0] }}"
    save: logo-clean.png
  svg:
    uses: recraft.vectorize
    with:
      image: "{{ steps.clean.files[0] }}"
    save: logo.svg
"""

BANNERS = """
  banner:
    uses: recraft.generate_image
    matrix:
      size: "{{ vars.sizes }}"
    with:
      prompt: "Banner for {{ vars.brand }}"
      size: "{{ matrix.size }}"
    save: "banner-{{ matrix.size }}.png"
"""

# a step the provider refuses (n is at most 6): a failure that is never retried
BROKEN = """
  broken:
    uses: http
    with:
      path: /recraft/v1/images/generations
      body: {prompt: "x", n: 99}
      artifacts: data[*].url
"""


def recipe(folder: Path, base_url: str, steps: str, *, brand: str = "Acme",
           extra: str = "", name: str = "brand.yaml",
           sizes: str = "[1024x1024, 2048x1024]") -> Path:
    text = (f"version: 1\nname: test\nprovider:\n  base_url: {base_url}\n"
            f"vars:\n  brand: {brand}\n  sizes: {sizes}\n"
            f"defaults: {{timeout: 30, retries: 3}}\n{extra}steps:{steps}")
    path = folder / name
    path.write_text(text)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def every_byte_written(folder: Path) -> bytes:
    """All the bytes of every file below ``folder`` (cache, lock, assets)."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def by_endpoint(requests: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in requests:
        name = request["path"]
        counts[name] = counts.get(name, 0) + 1
    return counts


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def kit_disagreements(recipe_path: Path, output_dir: str = "assets") -> list[str]:
    """What keeps the lock file, the gallery page and the files on disk from agreeing:
    every file the lock records exists with its sha256, and the gallery's cards show
    exactly the lock's files. Empty when they agree."""
    import re
    from html import unescape
    from urllib.parse import unquote

    from flowrunner.kit.lockfile import lock_path_for, read_lock

    folder = recipe_path.parent
    lock = read_lock(lock_path_for(recipe_path))
    problems = []
    recorded = set()
    for name, entry in lock.instances.items():
        for artifact in entry.get("artifacts", []):
            if not artifact.get("path"):
                continue
            recorded.add(artifact["path"])
            target = folder / artifact["path"]
            if not target.is_file():
                problems.append(f"{name}: {artifact['path']} is missing")
            elif sha256(target) != artifact["sha256"]:
                problems.append(f"{name}: {artifact['path']} differs from the lock file")
    page = folder / output_dir / "index.html"
    shown = set()
    if page.exists():
        shown = {f"{output_dir}/{unquote(unescape(m))}"
                 for m in re.findall(r'class="thumb" type="button" data-full="([^"]+)"',
                                     page.read_text())}
    first_files = set()
    for entry in lock.instances.values():
        paths = [a["path"] for a in entry.get("artifacts", []) if a.get("path")]
        first_files.update(paths[:1])
    if shown != first_files:
        problems.append(f"gallery shows {sorted(shown - first_files)} beyond the lock file and "
                        f"lacks {sorted(first_files - shown)}")
    return problems


STRESS_INSTANCES = 256


def stress_recipe(folder: Path, base_url: str, *, nested: bool) -> Path:
    """A recipe of STRESS_INSTANCES calls at concurrency 64 into a fresh folder."""
    save = '"tiles/{{ matrix.i % 16 }}/{{ matrix.i }}/tile.png"' if nested else \
        '"tile-{{ matrix.i }}.png"'
    path = folder / "tiles.yaml"
    path.write_text(f"""version: 1
name: tiles
provider: {{base_url: "{base_url}"}}
concurrency: 64
defaults: {{timeout: 120, retries: 3}}
steps:
  tile:
    uses: recraft.generate_image
    matrix: {{i: "{{{{ range({STRESS_INSTANCES}) | list }}}}"}}
    with: {{prompt: "tile {{{{ matrix.i }}}}", size: 1024x1024}}
    save: {save}
""")
    return path
