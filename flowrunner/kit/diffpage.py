"""The review page of `flow diff`: `<output_dir>/diff.html`, before and after side by side
for every changed asset, a difference view for same-size rasters, the parameter changes
and a link to the gallery. One self-contained file (images inlined as data URLs), so a CI
job can upload it alone; no network."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

_CSS = """
:root { color-scheme: light dark; --bg: #f6f5f2; --card: #fff; --ink: #222; --muted: #6b6b6b;
        --line: #e2dfd8; --add: #2f7d32; --del: #a33; --chg: #35608f;
        --check: #0000001a; }
@media (prefers-color-scheme: dark) { :root { --bg: #171717; --card: #222; --ink: #eee;
        --muted: #a0a0a0; --line: #333; --check: #ffffff1f; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, sans-serif; background: var(--bg);
       color: var(--ink); }
h1 { margin: 0 0 4px; font-size: 22px; } header p { margin: 0 0 20px; color: var(--muted); }
.change { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: 12px 14px; margin: 0 0 16px; }
.change h2 { margin: 0 0 6px; font-size: 16px; }
.kind { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; color: #fff;
        vertical-align: middle; }
.added { background: var(--add); } .removed { background: var(--del); }
.changed { background: var(--chg); }
ul.reasons { margin: 4px 0 10px; padding-left: 18px; font-family: ui-monospace, monospace;
             font-size: 12px; }
.pair { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; }
figure { margin: 0; }
.box { aspect-ratio: 1; display: flex; align-items: center; justify-content: center;
       border: 1px solid var(--line); border-radius: 6px;
       background: repeating-conic-gradient(var(--check) 0 25%, transparent 0 50%)
                   0 0 / 16px 16px; }
.box img, .box video { max-width: 100%; max-height: 100%; object-fit: contain; }
.missing { color: var(--muted); font-size: 12px; padding: 12px; text-align: center; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; word-break: break-all; }
"""

_SCRIPT = """
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
"""


@dataclass(slots=True)
class Side:
    """One side of a pair: the file's bytes (or why they are missing), its name, its type."""

    label: str
    name: str = ""
    data: bytes | None = None
    media_type: str = "image/png"
    missing: str = ""


@dataclass(slots=True)
class PairView:
    before: Side
    after: Side
    difference: bytes | None = None
    share: float | None = None


@dataclass(slots=True)
class ChangeView:
    instance: str
    kind: str
    endpoint: str
    reasons: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    pairs: list[PairView] = field(default_factory=list)


def _media(side: Side) -> str:
    e = html.escape
    if side.data is None:
        return f'<div class="box"><div class="missing">{e(side.missing)}</div></div>'
    url = f"data:{side.media_type};base64,{base64.b64encode(side.data).decode()}"
    if side.media_type.startswith("video/"):
        inner = f'<video controls src="{url}"></video>'
    elif side.media_type.startswith("audio/"):
        inner = f'<audio controls src="{url}"></audio>'
    else:
        inner = f'<img src="{url}" alt="{e(side.label)} {e(side.name)}">'
    return f'<div class="box">{inner}</div>'


def _pair(pair: PairView) -> str:
    e = html.escape
    cells = []
    for side in (pair.before, pair.after):
        cells.append(f'<figure class="{e(side.label)}">{_media(side)}'
                     f"<figcaption>{e(side.label)}: {e(side.name or '—')}</figcaption></figure>")
    if pair.difference is not None and pair.share is not None:
        diff = Side("difference", data=pair.difference)
        cells.append(f'<figure class="difference">{_media(diff)}<figcaption>difference: '
                     f"{pair.share:.1%} of the pixels changed</figcaption></figure>")
    else:
        cells.append('<figure class="difference"><div class="box"><div class="missing">no '
                     "pixel comparison (not two rasters of one size)</div></div></figure>")
    return f'<div class="pair">{"".join(cells)}</div>'


def render_diff_page(title: str, base: str, changes: list[ChangeView], *,
                     gallery: str | None) -> str:
    """The page's HTML."""
    e = html.escape
    blocks = []
    for change in changes:
        reasons = "".join(f"<li>{e(r)}</li>" for r in change.reasons + change.variables)
        blocks.append(
            f'<section class="change" id="{e(change.instance)}"><h2>'
            f'<span class="kind {e(change.kind)}">{e(change.kind)}</span> '
            f"{e(change.instance)} <small>{e(change.endpoint)}</small></h2>"
            + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
            + "".join(_pair(pair) for pair in change.pairs) + "</section>")
    body = "\n".join(blocks) or "<p>Nothing changed.</p>"
    link = f' · <a href="{e(gallery)}">the whole gallery</a>' if gallery else ""
    summary = f"{len(changes)} instance{'s' * (len(changes) != 1)} differ from {e(base)}{link}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)} · changes · flowrunner</title><style>{_CSS}</style>"
            f"<script>{_SCRIPT}</script></head>\n<body><header><h1>{e(title)}: what "
            f"changed</h1><p>{summary}</p></header>\n<main>\n{body}\n</main></body></html>\n")
