"""The run stamp recognises an unchanged re-run by size and time, else by content (a fresh
clone, a restored cache), and anything else as changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flowrunner.kit.stamp import Stamp, read_fresh_stamp, stamp_file


def _kit(folder: Path) -> tuple[Path, Path]:
    folder.mkdir()
    recipe = folder / "kit.yaml"
    recipe.write_text("version: 1\n")
    (folder / "assets").mkdir()
    (folder / "assets" / "a.png").write_bytes(b"A" * 100)
    (folder / "object").write_bytes(b"O" * 50)
    stamp = Stamp(recipe_sha256=__import__("hashlib").sha256(recipe.read_bytes()).hexdigest(),
                  base=folder.resolve())
    stamp.record(folder / "assets" / "a.png")
    stamp.record(folder / "object", size_only=True)
    target = stamp_file(folder / ".flow", recipe, {"mock": False})
    target.parent.mkdir(parents=True)
    stamp.write(target)
    return recipe, target


def test_new_times_are_checked_by_content_and_the_stamp_learns_them(tmp_path: Path) -> None:
    recipe, target = _kit(tmp_path / "kit")
    clone = tmp_path / "clone"
    shutil.copytree(tmp_path / "kit", clone)  # new mtimes everywhere, another folder
    later = os.stat(clone / "assets" / "a.png").st_mtime_ns + 5_000_000_000
    os.utime(clone / "assets" / "a.png", ns=(later, later))
    moved = stamp_file(clone / ".flow", clone / "kit.yaml", {"mock": False})
    assert moved.name == target.name  # named by the recipe as seen from its cache
    assert read_fresh_stamp(moved, clone / "kit.yaml") is not None
    # the new time was learnt: the file need not be read again
    assert str(later) in moved.read_text()


def test_same_size_other_bytes_or_a_missing_object_is_a_change(tmp_path: Path) -> None:
    recipe, target = _kit(tmp_path / "kit")
    asset = tmp_path / "kit" / "assets" / "a.png"
    asset.write_bytes(b"B" * 100)  # same size, new content (and a new time)
    later = os.stat(asset).st_mtime_ns + 5_000_000_000
    os.utime(asset, ns=(later, later))
    assert read_fresh_stamp(target, recipe) is None
    asset.write_bytes(b"A" * 100)
    os.utime(asset, ns=(later, later))
    assert read_fresh_stamp(target, recipe) is not None
    (tmp_path / "kit" / "object").unlink()
    assert read_fresh_stamp(target, recipe) is None


def test_a_paths_key_is_what_relpath_says_of_it(tmp_path: Path) -> None:
    """The stamp's shortcut for paths inside the recipe's folder against the general rule
    (relative when inside, as given when outside), on paths with every part that needs
    normalising: `.`, `..`, `..name`, empty parts, a sibling folder with a longer name."""
    import random

    base = tmp_path / "kit"
    stamp = Stamp(recipe_sha256="x", base=base)

    def general(path: str) -> str:
        relative = os.path.relpath(os.path.abspath(path), base)
        return path if relative.startswith("..") else relative.replace(os.sep, "/")

    rng = random.Random(7)
    paths = [str(base / "assets" / "a.png"), f"{base}x/a", str(base), f"{base}/", "rel/a"]
    for _ in range(5000):
        paths.append(str(base) + "".join(rng.choice(["/", "a", ".", "..", "/.", "b/", "x"])
                                         for _ in range(rng.randint(0, 7))))
    for path in paths:
        assert stamp.key(path) == general(path), path
