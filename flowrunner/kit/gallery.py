"""The gallery: `<output_dir>/index.html`, the kit as a review page — every asset the lock
file records, grouped by step, with its size in pixels, what it was made from, and a
click-to-enlarge view.

No network, inline CSS and script; thumbnails are the saved files themselves, linked
relatively, so the page works from the folder, a zip, or a CI artifact. Builds HTML from
plain values only (sidecars.py gathers them from the plan and the lock file).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..media.formats import EXTENSIONS, kind_of

KEY_PARAMS = ("size", "style", "substyle", "model", "n", "strength", "style_id")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_CSS = """
:root { color-scheme: light dark; --bg: #f6f5f2; --card: #fff; --ink: #222; --muted: #6b6b6b;
        --line: #e2dfd8; --called: #2f7d32; --local: #7a5a12; --mock: #8a3b8f;
        --check: #0000001a; }
@media (prefers-color-scheme: dark) { :root { --bg: #171717; --card: #222; --ink: #eee;
        --muted: #a0a0a0; --line: #333; --check: #ffffff24; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, sans-serif; background: var(--bg);
       color: var(--ink); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 6px; color: var(--muted); }
section.step { margin: 26px 0 0; }
section.step h2 { margin: 0 0 2px; font-size: 17px; }
section.step > p { margin: 0 0 10px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 16px;
        align-items: start; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
        overflow: hidden; display: flex; flex-direction: column; }
.thumb { display: flex; align-items: center; justify-content: center; height: 200px;
         width: 100%; border: 0; padding: 0; cursor: zoom-in;
         background: repeating-conic-gradient(var(--check) 0 25%, transparent 0 50%)
                     0 0 / 16px 16px; }
.thumb img { max-width: 100%; max-height: 100%; object-fit: contain; display: block; }
.thumb video { max-width: 100%; max-height: 100%; display: block; }
.thumb audio { width: 92%; }
.thumb.audio { flex-direction: column; gap: 8px; }
.thumb img.cover { max-height: 140px; max-width: 100%; object-fit: contain; }
.refs { display: flex; gap: 6px; flex-wrap: wrap; padding: 8px; min-height: 200px;
        align-content: flex-start; }
.refs img { width: 88px; height: 88px; object-fit: cover; border-radius: 4px; }
.body { padding: 10px 12px 12px; display: flex; flex-direction: column; gap: 4px; }
.title { font-weight: 600; word-break: break-all; }
.meta { color: var(--muted); font-size: 12px; }
.prompt { font-size: 13px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px;
         color: #fff; background: var(--called); }
.badge.local { background: var(--local); } .badge.mock { background: var(--mock); }
dialog { border: 0; padding: 0; background: transparent; max-width: 96vw; max-height: 96vh; }
dialog::backdrop { background: #000c; }
dialog img { max-width: 94vw; max-height: 90vh; display: block;
             background: repeating-conic-gradient(#ccc 0 25%, #fff 0 50%) 0 0 / 16px 16px; }
dialog p { color: #eee; margin: 6px 0 0; font-size: 13px; }
nav.folders { margin: 10px 0 0; display: flex; gap: 6px; flex-wrap: wrap; }
nav.folders button { font: inherit; font-size: 12px; border: 1px solid var(--line);
                     background: var(--card); color: var(--ink); border-radius: 12px;
                     padding: 1px 10px; cursor: pointer; }
a { color: inherit; }
"""

_SCRIPT = """
window.addEventListener("load", () => {
  const images = [...document.querySelectorAll("main img")];
  document.body.dataset.images = images.length;
  document.body.dataset.loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  const boxes = [...document.querySelectorAll(".thumb")].map(b => {
    const r = b.getBoundingClientRect(); return Math.round(r.width) + "x" + Math.round(r.height);
  });
  document.body.dataset.thumbSizes = [...new Set(boxes)].join(" ");
  const media = [...document.querySelectorAll("main video, main audio")];
  document.body.dataset.media = media.length;
  const decoded = () => {
    document.body.dataset.mediaReady = media.filter(m => m.readyState >= 1 && m.duration > 0)
      .length;
  };
  media.forEach(m => m.addEventListener("loadedmetadata", decoded));
  decoded();
  const dialog = document.querySelector("dialog");
  document.querySelectorAll("button.thumb").forEach(button =>
    button.addEventListener("click", () => {
      dialog.querySelector("img").src = button.dataset.full;
      dialog.querySelector("p").textContent = button.dataset.caption;
      dialog.showModal();
    }));
  dialog.addEventListener("click", () => dialog.close());
  document.querySelectorAll("nav.folders button").forEach(button =>
    button.addEventListener("click", () => {
      const folder = button.dataset.folder;
      document.querySelectorAll("article.card").forEach(card => {
        card.hidden = folder !== "*" && card.dataset.folder !== folder;
      });
      document.querySelectorAll("section.step").forEach(section => {
        section.hidden = ![...section.querySelectorAll("article.card")].some(c => !c.hidden);
      });
    }));
});
"""


@dataclass(slots=True)
class Asset:
    """One saved file of an instance."""

    file: str  # relative to the output folder
    size_bytes: int = 0
    width: int | None = None
    height: int | None = None
    poster: str | None = None  # its cover image (a song's, a video's first frame)


@dataclass(slots=True)
class Card:
    """One instance: its files (or, for a step that saves none, the images it was given)."""

    instance: str
    step: str
    endpoint: str
    badge: str  # called | local | mock
    assets: list[Asset] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # inputs, relative to the output folder
    made_from: list[str] = field(default_factory=list)  # files of earlier steps it used
    credits: float = 0.0
    unit: str = "credits"
    credits_estimated: bool = False  # the answer named no cost: the catalog's price
    matrix: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Section:
    """One step of the recipe and its instances."""

    step: str
    description: str
    cards: list[Card] = field(default_factory=list)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def short(value: Any) -> str:
    """A parameter for a card: UUIDs (style ids) shortened to their first 8 characters."""
    if isinstance(value, str) and _UUID.match(value):
        return value[:8] + "…"
    if isinstance(value, dict) and set(value) == {"sha256"}:
        return f"file {str(value['sha256'])[:8]}…"
    return value if isinstance(value, str) else json.dumps(value)


def _url(path: str) -> str:
    # a file name is a path, not a URL: `banner-16:9.png` would read as a scheme, `#` as a
    # fragment; quoted, every name links to its own file
    return html.escape(quote(path, safe="/."))


_KIND_BY_EXT = {ext: kind_of(media) for media, ext in EXTENSIONS.items()}


def _kind(file: str) -> str:
    """"image", "video" or "audio", by the saved file's extension."""
    return _KIND_BY_EXT.get(file.rpartition(".")[2].lower(), "image")


def _card(card: Card) -> str:
    e = html.escape
    params = {k: card.params[k] for k in KEY_PARAMS if k in card.params}
    shown = " · ".join(f"{k}: {short(v)}" for k, v in params.items())
    matrix = " · ".join(f"{k}={v}" for k, v in card.matrix.items())
    prompt = card.params.get("prompt")
    parts = []
    kind = _kind(card.assets[0].file) if card.assets else "image"
    if card.assets and kind in ("video", "audio"):
        # played in place: controls, and only the metadata loaded until asked; a video
        # shows its poster until played, a song its cover above the player
        first = card.assets[0]
        cover = f' poster="{_url(first.poster)}"' if first.poster and kind == "video" else ""
        above = f'<img class="cover" src="{_url(first.poster)}" alt="">' \
            if first.poster and kind == "audio" else ""
        parts.append(f'<div class="thumb {kind}">{above}<{kind} controls preload="metadata" '
                     f'src="{_url(first.file)}"{cover}></{kind}></div>')
    elif card.assets:
        first = card.assets[0]
        caption = f"{first.file} · {card.instance}"
        parts.append(f'<button class="thumb" type="button" data-full="{_url(first.file)}" '
                     f'data-caption="{e(caption)}"><img src="{_url(first.file)}" '
                     f'alt="{e(card.instance)}" loading="eager"></button>')
    else:
        refs = "".join(f'<a href="{_url(r)}"><img src="{_url(r)}" alt="{e(r)}"></a>'
                       for r in card.references)
        parts.append(f'<div class="refs">{refs}</div>')
    parts.append('<div class="body">')
    titles = ", ".join(a.file for a in card.assets) or f"{card.instance} (no file saved)"
    parts.append(f'<div class="title">{e(titles)}</div>')
    dims = [f"{a.width}×{a.height} px" for a in card.assets[:1] if a.width and a.height]
    size = f" · {_size(sum(a.size_bytes for a in card.assets))}" if card.assets else ""
    parts.append(f'<div class="meta">{e(card.instance)}' + (f" · {e(matrix)}" if matrix else "")
                 + (f" · {dims[0]}" if dims else "") + f"{size}</div>")
    if prompt:
        parts.append(f'<div class="prompt">{e(str(prompt))}</div>')
    parts.append(f'<div class="meta">{e(card.endpoint)}' + (f" · {e(shown)}" if shown else "")
                 + "</div>")
    if card.made_from:
        links = ", ".join(f'<a href="{_url(f)}">{e(f)}</a>' for f in card.made_from)
        parts.append(f'<div class="meta">made from {links}</div>')
    if card.references:
        parts.append(f'<div class="meta">from {len(card.references)} reference image'
                     f"{'s' * (len(card.references) != 1)}</div>")
    for name, value in card.outputs.items():
        parts.append(f'<div class="meta">{e(name)}: <span title="{e(str(value))}">'
                     f"{e(str(short(value)))}</span></div>")
    parts.append(f'<div class="meta"><span class="badge {e(card.badge)}">{e(card.badge)}'
                 f"</span> {'~' if card.credits_estimated else ''}{card.credits:g} "
                 f"{e(card.unit)}{', estimated' if card.credits_estimated else ''}"
                 + "".join(f' · <a href="{_url(a.file)}">open</a>' for a in card.assets[:1])
                 + "</div></div>")
    folder = card.assets[0].file.rpartition("/")[0] if card.assets else ""
    return (f'<article class="card" id="{e(card.instance)}" data-folder="{e(folder or ".")}">'
            f'{"".join(parts)}</article>')


def render_gallery(title: str, description: str, header: str, sections: list[Section]) -> str:
    """The page's HTML."""
    e = html.escape
    blocks = []
    for section in sections:
        if not section.cards:
            continue
        blocks.append(f'<section class="step" id="step-{e(section.step)}"><h2>'
                      f"{e(section.step)}</h2>"
                      + (f"<p>{e(section.description)}</p>" if section.description else "")
                      + '<div class="grid">' + "\n".join(_card(c) for c in section.cards)
                      + "</div></section>")
    body = "\n".join(blocks) or "<p>No saved assets yet.</p>"
    folders: dict[str, int] = {}
    for section in sections:
        for card in section.cards:
            for asset in card.assets:
                name = asset.file.rpartition("/")[0] or "."
                folders[name] = folders.get(name, 0) + 1
    nav = ""
    if len(folders) > 1:
        nav = ('<nav class="folders"><button type="button" data-folder="*">all</button>'
               + "".join(f'<button type="button" data-folder="{e(name)}">'
                         f"{e(name if name != '.' else './')} ({count})</button>"
                         for name, count in sorted(folders.items())) + "</nav>")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)} · flowrunner</title><style>{_CSS}</style>"
            f"<script>{_SCRIPT}</script></head>\n<body><header><h1>{e(title)}</h1>"
            + (f"<p>{e(description)}</p>" if description else "")
            + f"<p>{e(header)}</p>{nav}</header>\n<main>\n{body}\n</main>"
            "<dialog><img alt=\"\"><p></p></dialog></body></html>\n")


def write_gallery(output_dir: Path, page: str) -> Path:
    """Write `index.html` into the output folder (atomically; untouched when unchanged)."""
    from ..store.cache import write_if_changed

    target = output_dir / "index.html"
    write_if_changed(target, page)
    return target


def picture_size(path: Path) -> tuple[int | None, int | None]:
    """A saved file's size in pixels (PNG, JPEG, WEBP, GIF, ICO; SVG by its attributes)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None, None
    if b"<svg" in head:
        text = head.decode("utf-8", "replace")
        width = re.search(r'<svg[^>]*\swidth="(\d+)', text)
        height = re.search(r'<svg[^>]*\sheight="(\d+)', text)
        if width and height:
            return int(width.group(1)), int(height.group(1))
        box = re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+) ([\d.]+)"', text)
        return (int(float(box.group(1))), int(float(box.group(2)))) if box else (None, None)
    from ..media.imaging import picture_dimensions

    return picture_dimensions(path)
