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
