"""A CI job on a fresh clone where nothing changed: flowrunner's `flow run --frozen` against
doit checking an equivalent project, both restored the way CI restores them.

Setup, per size N: a recipe of N instances (N/2 cheap generate calls against the emulator,
in its own process, and N/2 local resizes of their images), run once to fill the cache,
committed to a git repository with its lock file and gallery; one variant commits the
assets too, the other leaves them to be restored from the cache. doit gets N file tasks
(each asset's bytes as a `file_dep` → a copy as its target, md5 checked), its inputs and
outputs committed and `.doit.db` kept.

Each round, alternating: a fresh `git clone`, the cache (or `.doit.db`) restored by copy, so
every file has a new mtime, then one timed process:

- flowrunner, assets committed: `flow run --frozen` (checks every asset, changes nothing),
- flowrunner, assets restored: the same with the assets left out of git (restored),
  copied from the cache (the default) or linked (`--link hardlink`),
- doit: `doit` (md5 of every dependency, since the mtimes are new).

    python benchmarks/ci_noop.py                    # 1,000 and 5,000, 5 rounds
    python benchmarks/ci_noop.py --sizes 1000 --rounds 3

Targets (issue 15): committed assets ahead of doit (ratio < 1.0); restored assets within
2x of doit's check; time per instance not rising from 1,000 to 5,000.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed import as_installed  # a sibling script (sys.path above)
from noop import setup_doit  # a sibling script (sys.path above), not a package
from scale import EMULATOR, KEY, make_recipe


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def commit_all(folder: Path, ignore: str) -> None:
    (folder / ".gitignore").write_text(ignore)
    git("init", "-q", cwd=folder)
    git("add", "-A", cwd=folder)
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "kit", cwd=folder)


def make_kit(folder: Path, count: int, base_url: str, *, assets_committed: bool) -> None:
    folder.mkdir(parents=True)
    make_recipe(folder, count // 2, base_url, name="kit.yaml", more_steps=(
        "  thumb:\n"
        "    uses: image.resize\n"
        "    matrix: {i: \"{{ vars.items }}\"}\n"
        "    with: {image: \"{{ steps.product[matrix.i].files[0] }}\", width: 64}\n"
        "    save: \"thumbs/t-{{ matrix.i }}.png\"\n"))
    subprocess.run([sys.executable, "-m", "flowrunner", "run", "kit.yaml"], cwd=folder,
                   check=True, capture_output=True, env={**os.environ, "ELKAPI_API_KEY": KEY})
    commit_all(folder, ".flow/\n" + ("" if assets_committed else "assets/*\n!assets/index.html\n"))


def fresh(repo: Path, into: Path, restore: list[tuple[Path, str]]) -> Path:
    """A fresh clone of ``repo`` with the given paths copied in (new mtimes, as CI's
    cache restore gives)."""
    shutil.rmtree(into, ignore_errors=True)
    git("clone", "-q", str(repo), str(into), cwd=repo.parent)
    for source, name in restore:
        if source.is_dir():
            shutil.copytree(source, into / name)
        else:
            shutil.copy(source, into / name)
    return into


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")
    return time.perf_counter() - started


def changed(clone: Path) -> int:
    return len(subprocess.run(["git", "status", "--porcelain"], cwd=clone, check=True,
                              capture_output=True, text=True).stdout.splitlines())


def one_size(count: int, base_url: str, work: Path, rounds: int) -> dict[str, list[float]]:
    env = {**os.environ, "ELKAPI_API_KEY": KEY}
    flow = [sys.executable, "-m", "flowrunner", "run", "kit.yaml", "--frozen"]
    kits = {name: work / f"{name}-{count}" for name in ("committed", "restored")}
    for name, folder in kits.items():
        make_kit(folder, count, base_url, assets_committed=name == "committed")
    # doit checks the kit's own asset bytes: an equivalent md5 workload
    doit = setup_doit(work / f"doit-{count}", 0,
                      sorted((kits["committed"] / "assets").rglob("*.png")))
    doit_repo = work / f"doit-{count}" / "doit"
    saved_db = work / f"doit-{count}-db"  # doit's dbm files: .doit.db(.dat/.dir/.bak)
    if doit:
        saved_db.mkdir()
        for part in doit_repo.glob(".doit.db*"):
            shutil.move(part, saved_db / part.name)
        commit_all(doit_repo, ".doit.db*\n")
    # the restored kit twice: copies (the default), and hard links to the cache objects
    variants = [("assets committed", kits["committed"], flow),
                ("assets restored", kits["restored"], flow),
                ("assets restored, --link hardlink", kits["restored"],
                 [*flow, "--link", "hardlink"])]
    times: dict[str, list[float]] = {f"flowrunner, {name}": [] for name, _, _ in variants}
    if doit:
        times["doit (md5)"] = []
    clone = work / "clone"
    for _ in range(rounds):
        for name, folder, command in variants:
            target = fresh(folder, clone, [(folder / ".flow", ".flow")])
            times[f"flowrunner, {name}"].append(timed(command, target, env))
            assert changed(target) == 0, f"a no-op changed committed files ({name})"
        if doit:
            target = fresh(doit_repo, clone, [(p, p.name) for p in saved_db.iterdir()])
            times["doit (md5)"].append(timed(doit, target, env))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    as_installed()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()}")
    server = subprocess.Popen([sys.executable, "-c", EMULATOR, KEY], stdout=subprocess.PIPE,
                              text=True)
    work = Path(tempfile.mkdtemp(prefix="flow-ci-noop-"))
    try:
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        results = {int(size): one_size(int(size), base_url, work, args.rounds)
                   for size in args.sizes.split(",")}
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    print("\n| instances | tool | median s | min | max | ms per instance | vs doit |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for count, times in results.items():
        doit = statistics.median(times["doit (md5)"]) if "doit (md5)" in times else None
        for name, values in times.items():
            median = statistics.median(values)
            ratio = f"{median / doit:.2f}" if doit else "—"
            print(f"| {count:,} | {name} | {median:.2f} | {min(values):.2f} | "
                  f"{max(values):.2f} | {1000 * median / count:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
