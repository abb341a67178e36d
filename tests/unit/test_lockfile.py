from __future__ import annotations

from pathlib import Path

from flowrunner.kit.lockfile import lock_path_for, read_lock, render_lock, write_lock

ENTRIES = {
    "banner[size=1:1]": {"step": "banner", "key": "k2", "credits": 40.0, "outputs": {},
                         "params": {"prompt": "a \"quoted\" fox: yes", "n": 1, "flag": True},
                         "artifacts": [{"sha256": "ab" * 32, "bytes": 3, "path": "assets/b.png"}]},
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


def test_merge_keeps_earlier_entries_unless_replaced_or_their_file_was_taken() -> None:
    from flowrunner.kit.lockfile import merge_entries

    def entry(key: str, path: str) -> dict[str, object]:
        return {"key": key, "artifacts": [{"path": path, "sha256": key, "bytes": 1}]}

    old = {"logo": entry("a", "assets/logo.png"), "svg": entry("b", "assets/logo.svg"),
           "banner[size=1]": entry("c", "assets/banner.png")}
    finished = {"logo": entry("d", "assets/logo.png"),
                "banner[size=2]": entry("e", "assets/banner.png")}
    merged = merge_entries(old, finished)
    # logo replaced; svg kept; the old banner's file now belongs to the new instance
    assert merged == {"logo": finished["logo"], "svg": old["svg"],
                      "banner[size=2]": finished["banner[size=2]"]}


def test_an_old_mock_lock_file_marks_every_entry_emulated(tmp_path: Path) -> None:
    path = tmp_path / "r.lock"
    write_lock(path, "r.yaml", {"logo": {"key": "k", "artifacts": []}}, "flowrunner-emulator")
    lock = read_lock(path)
    assert lock.emulated("logo") and lock.any_emulated
    write_lock(path, "r.yaml", {"logo": {"key": "k"}, "svg": {"key": "s", "emulated": True}},
               "https://api.elkapi.com")
    lock = read_lock(path)
    assert not lock.emulated("logo") and lock.emulated("svg")


def test_budget_refusal_adds_up_and_steps_within_follow_dependencies() -> None:
    import pytest

    from flowrunner.errors import BudgetExceeded
    from flowrunner.run.budget import Budget, steps_within

    budget = Budget(50, unit="credits")
    budget.reserve("a", 40)
    with pytest.raises(BudgetExceeded) as refused:
        budget.reserve("b", 40)
    assert "has 10 credits available (50 − 0 spent − 40 held by running calls)" in \
        refused.value.message
    costs = {"logo": 1.0, "clean": 0.25, "banner": 2.0, "svg": 0.25}
    needs = {"clean": {"logo"}, "svg": {"clean"}}
    assert steps_within(costs, needs, 1.5) == ["logo", "clean", "svg"]
    assert steps_within(costs, needs, 0.5) == []  # clean and svg need the logo


def test_a_lock_file_is_parsed_once_per_content_and_no_cache_is_made_for_it(
        tmp_path: Path) -> None:
    cache = tmp_path / ".flow" / "cache"
    path = tmp_path / "r.lock"
    write_lock(path, "r.yaml", {"logo": {"key": "k"}}, "https://api.elkapi.com")
    assert read_lock(path, memo=cache / "parsed").instances == {"logo": {"key": "k"}}
    assert not (tmp_path / ".flow").exists()  # a checkout without a cache stays without
    cache.mkdir(parents=True)
    read_lock(path, memo=cache / "parsed")
    [memo] = (cache / "parsed").iterdir()
    # the memo answers for this exact text only; a changed file is parsed again
    memo.write_text(memo.read_text().replace('"k"', '"from-memo"'))
    assert read_lock(path, memo=cache / "parsed").instances["logo"]["key"] == "from-memo"
    path.write_text(path.read_text() + "\n")
    assert read_lock(path, memo=cache / "parsed").instances["logo"]["key"] == "k"
    assert len(list((cache / "parsed").iterdir())) == 1  # the old memo went


def test_a_saved_files_lock_path_is_what_relpath_says_of_it(tmp_path: Path) -> None:
    """The lock file's path of a saved file, by the shortcut for plain names, against the
    general rule (relative to the recipe's folder when inside it, else as saved), for
    output folders inside, equal to and outside the recipe's folder."""
    import os
    import random

    from flowrunner.kit.sidecars import _lock_path

    def general(saved: str, output_dir: Path, recipe_folder: Path) -> str:
        relative = os.path.relpath(output_dir / saved, recipe_folder)
        return saved if relative.startswith("..") else Path(relative).as_posix()

    recipe_folder = tmp_path / "kit"
    outputs = [recipe_folder / "assets", recipe_folder, tmp_path / "elsewhere",
               recipe_folder / "a" / "b", Path("relative/out")]
    rng = random.Random(3)
    names = ["a.png", "x/y.png", "..x/a.png", "./a.png", "a/../b.png", "a//b.png", ".hidden"]
    for _ in range(3000):
        names.append("/".join(rng.choice(["a", "..", ".", "", "b.png", "..c", "d e"])
                              for _ in range(rng.randint(1, 4))))
    for output_dir in outputs:
        for saved in names:
            assert _lock_path(saved, output_dir, recipe_folder) == \
                general(saved, output_dir, recipe_folder), (saved, output_dir)
