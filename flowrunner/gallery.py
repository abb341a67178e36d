"""The gallery: `<output_dir>/index.html`, a self-contained page with a card per asset.

No network, inline CSS; thumbnails are the saved files themselves, linked relatively, so the
page works from the folder, a zip, or a CI artifact. Builds HTML from plain values only.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

KEY_PARAMS = ("size", "style", "substyle", "model", "n", "strength", "style_id")

_CSS = """
:root { color-scheme: light dark; --bg: #f6f5f2; --card: #fff; --ink: #222; --muted: #6b6b6b;
        --line: #e2dfd8; --ok: #2f7d32; --cached: #35608f; }
@media (prefers-color-scheme: dark) { :root { --bg: #171717; --card: #222; --ink: #eee;
        --muted: #a0a0a0; --line: #333; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, sans-serif; background: var(--bg);
       color: var(--ink); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 20px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
        overflow: hidden; display: flex; flex-direction: column; }
.thumb { aspect-ratio: 4 / 3; display: flex; align-items: center; justify-content: center;
         background: repeating-conic-gradient(#0000000d 0 25%, transparent 0 50%) 0 0 / 16px 16px; }
.thumb img { max-width: 100%; max-height: 100%; object-fit: contain; }
.body { padding: 10px 12px 12px; display: flex; flex-direction: column; gap: 4px; }
.title { font-weight: 600; word-break: break-all; }
.meta { color: var(--muted); font-size: 12px; }
.prompt { font-size: 13px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px;
         color: #fff; background: var(--ok); }
.badge.cached { background: var(--cached); }
a { color: inherit; }
"""

_SCRIPT = """
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
"""


@dataclass(slots=True)
class Card:
    """One saved asset."""

    file: str  # relative to the output folder
    instance: str
    step: str
    endpoint: str
    status: str  # called / cached / locked
    credits: float = 0.0
    unit: str = "credits"
    size_bytes: int = 0
    matrix: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _card(card: Card) -> str:
    e = html.escape
    params = {k: card.params[k] for k in KEY_PARAMS if k in card.params}
    shown = " · ".join(f"{k}: {v if isinstance(v, (str, int, float)) else json.dumps(v)}"
                       for k, v in params.items())
    matrix = " · ".join(f"{k}={v}" for k, v in card.matrix.items())
    prompt = card.params.get("prompt")
    badge = "cached" if card.status != "called" else "called"
    # a file name is a path, not a URL: `banner-16:9.png` would read as a scheme, `#` as a
    # fragment; quoted, every name links to its own file
    url = e(quote(card.file, safe="/"))
    return (
        f'<article class="card"><a class="thumb" href="{url}">'
        f'<img src="{url}" alt="{e(card.instance)}" loading="eager"></a>'
        f'<div class="body"><div class="title">{e(card.file)}</div>'
        f'<div class="meta">{e(card.instance)}'
        + (f" · {e(matrix)}" if matrix else "") + "</div>"
        + (f'<div class="prompt">{e(str(prompt))}</div>' if prompt else "")
        + f'<div class="meta">{e(card.endpoint)}' + (f" · {e(shown)}" if shown else "") + "</div>"
        f'<div class="meta"><span class="badge {badge}">{e(card.status)}</span> '
        f"{card.credits:g} {e(card.unit)} · {_size(card.size_bytes)} · "
        f'<a href="{url}">open</a></div></div></article>')


def render_gallery(title: str, cards: list[Card], *, summary: str) -> str:
    e = html.escape
    body = "\n".join(_card(card) for card in cards) or "<p>No saved assets yet.</p>"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)} · flowrunner</title><style>{_CSS}</style>"
            f"<script>{_SCRIPT}</script></head>\n<body><header><h1>{e(title)}</h1>"
            f"<p>{e(summary)}</p></header>\n<main class=\"grid\">\n{body}\n</main></body></html>\n")


def write_gallery(output_dir: Path, title: str, cards: list[Card], *, summary: str) -> Path:
    """Write `index.html` into the output folder (atomically)."""
    from .cache import atomic_write_bytes

    target = output_dir / "index.html"
    atomic_write_bytes(target, render_gallery(title, cards, summary=summary).encode())
    return target
