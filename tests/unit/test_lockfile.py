from __future__ import annotations

from pathlib import Path

from flowrunner.lockfile import lock_path_for, read_lock, render_lock, write_lock

ENTRIES = {
    "banner[size=1:1]": {"step": "banner", "key": "k2", "credits": 40.0, "outputs": {},
                         "params": {"prompt": "a \"quoted\" fox: yes", "n": 1, "flag": True},
                         "artifacts": [{"sha256": "ab", "bytes": 3, "path": "assets/b.png"}]},
    "logo": {"step": "logo", "key": "k1", "credits": 4, "outputs": {"style_id": "s"},
             "params": {"colors": [[1, 2, 3]], "c": {"rgb": [1, 2, 3]}}, "artifacts": []},
}


def test_lock_is_sorted_and_round_trips(tmp_path: Path) -> None:
    text = render_lock("brand.yaml", ENTRIES, "https://api.elkapi.com")
    assert text.index("  banner[size=1:1]:") < text.index("  logo:")
    assert text.index("version: 1") < text.index("provider:") < text.index("instances:")
    assert "credits: 40\n" in text
    path = tmp_path / "brand.lock"
    assert write_lock(path, "brand.yaml", ENTRIES, "https://api.elkapi.com") is True
    assert write_lock(path, "brand.yaml", dict(reversed(list(ENTRIES.items()))),
                      "https://api.elkapi.com") is False  # same content: untouched
    lock = read_lock(path)
    assert lock.provider == "https://api.elkapi.com"
    assert lock.instances["banner[size=1:1]"]["params"]["prompt"] == 'a "quoted" fox: yes'
    assert lock.instances["logo"]["params"]["colors"] == [[1, 2, 3]]


def test_lock_path_is_beside_the_recipe_and_not_yaml() -> None:
    assert lock_path_for(Path("/x/brand_assets.yaml")) == Path("/x/brand_assets.lock")
