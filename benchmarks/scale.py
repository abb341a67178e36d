"""Large batches: a recipe of N matrix instances (one cheap generate call each, saved as a
file) at several sizes, against the emulator in its own process (cheap placeholder images,
no latency). Per size, each as a whole `flow` process:

- first run (every instance called), warm no-op (same working copy: the run stamp),
- fresh-clone no-op: the recipe, lock file, assets and gallery committed to git, a fresh
  `git clone`, the cache restored by copy (new mtimes), `flow run --frozen`; then
  `git status --porcelain` (committed outputs must not change when nothing changed),
- `flow validate` and `flow plan`,

with wall time, CPU (user + system of the process) per instance and peak memory (max RSS),
and the sidecar sizes (lock file, run stamp, files under `.flow/`).

    python benchmarks/scale.py                       # 1,000 and 10,000
    python benchmarks/scale.py --sizes 1000,10000,50000
    python benchmarks/scale.py --sizes 1000 --plan-sizes 100000   # validate/plan only

Targets (issue 17): CPU per instance of a first run at 50,000 within 1.2x of the figure at
1,000; validate and plan of 100,000 instances under 3 s each.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed import as_installed  # a sibling script (sys.path above)

KEY = "bench-key"
EMULATOR = """
import sys
from flowrunner.emulator.server import make_server
server = make_server("127.0.0.1", 0, api_key=sys.argv[1], plain_images=True)
server.request_queue_size = 1024
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def make_recipe(folder: Path, count: int, base_url: str, *, name: str = "batch.yaml",
                more_steps: str = "") -> Path:
    """A matrix of ``count`` cheap generate calls (`product[i=…]`), then ``more_steps``."""
    items = ", ".join(str(i) for i in range(count))
    path = folder / name
    path.write_text(
        "version: 1\nname: batch\nconcurrency: 16\n"
        f"provider: {{base_url: \"{base_url}\"}}\n"
        f"vars:\n  items: [{items}]\n"
        "steps:\n"
        "  product:\n"
        "    uses: recraft.generate_image\n"
        "    matrix: {i: \"{{ vars.items }}\"}\n"
        "    with: {prompt: \"Product {{ matrix.i }} on a plain background\", "
        "size: 1024x1024}\n"
        "    save: \"products/p-{{ matrix.i }}.png\"\n" + more_steps)
    return path


def measured(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0 and os.waitstatus_to_exitcode(status) not in (0, 4):
        raise SystemExit(f"{' '.join(command)} failed: "
                         f"{process.stderr.read().decode() if process.stderr else ''}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def git(*args: str, cwd: Path) -> str:
    # no automatic gc: it detaches and would still be writing when the folder goes
    return subprocess.run(["git", "-c", "gc.auto=0", "-c", "maintenance.auto=false", *args],
                          cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def one_size(count: int, base_url: str, work: Path) -> dict[str, object]:
    folder = work / f"n{count}"
    folder.mkdir()
    recipe = make_recipe(folder, count, base_url)
    env = {**os.environ, "ELKAPI_API_KEY": KEY}
    flow = [sys.executable, "-m", "flowrunner"]
    row: dict[str, object] = {"instances": count}
    for name, args in (("first run", ["run", recipe.name]),
                       ("warm no-op", ["run", recipe.name])):
        row[name] = measured(flow + args, folder, env)
    lock = folder / "batch.lock"
    stamps = list((folder / ".flow" / "cache" / "runs").glob("*.json"))
    row["lock MB"] = lock.stat().st_size / 1e6
    row["stamp MB"] = sum(p.stat().st_size for p in stamps) / 1e6
    row[".flow files"] = sum(1 for p in (folder / ".flow").rglob("*") if p.is_file())
    # the kit a team commits, and a CI job's fresh clone of it with the cache restored
    (folder / ".gitignore").write_text(".flow/\n")
    git("init", "-q", cwd=folder)
    git("add", "-A", cwd=folder)
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "kit", cwd=folder)
    clone = work / f"clone{count}"
    git("clone", "-q", str(folder), str(clone), cwd=work)
    shutil.copytree(folder / ".flow", clone / ".flow")
    row["fresh-clone no-op"] = measured(flow + ["run", recipe.name, "--frozen"], clone, env)
    row["changed after"] = len(git("status", "--porcelain", cwd=clone).splitlines())
    row["validate"] = measured(flow + ["validate", recipe.name], folder, env)
    row["plan"] = measured(flow + ["plan", recipe.name], folder, env)
    shutil.rmtree(clone)
    return row


def plan_only(count: int, base_url: str, work: Path
              ) -> tuple[int, dict[str, tuple[float, float, int]]]:
    """`flow validate` and `flow plan` of a recipe of ``count`` instances, no cache."""
    folder = work / f"plan{count}"
    folder.mkdir()
    recipe = make_recipe(folder, count, base_url)
    flow = [sys.executable, "-m", "flowrunner"]
    return count, {phase: measured(flow + [phase, recipe.name], folder, dict(os.environ))
                   for phase in ("validate", "plan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--plan-sizes", default="100000",
                        help="also validate and plan recipes of these sizes, nothing cached "
                             "(no first run: quick at any size)")
    args = parser.parse_args()
    as_installed()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    server = subprocess.Popen([sys.executable, "-c", EMULATOR, KEY], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        # (a git process of the kit's may still be writing in .git when it is removed)
        with tempfile.TemporaryDirectory(prefix="flow-scale-",
                                         ignore_cleanup_errors=True) as tmp:
            rows = [one_size(count, base_url, Path(tmp)) for count in sizes]
            planned = [plan_only(int(count), base_url, Path(tmp))
                       for count in args.plan_sizes.split(",") if count]
    finally:
        server.terminate()
    phases = ["first run", "warm no-op", "fresh-clone no-op", "validate", "plan"]
    print("\n| instances | phase | wall s | CPU ms/instance | peak MB |")
    print("|---:|---|---:|---:|---:|")
    for row in rows:
        count = int(str(row["instances"]))
        for phase in phases:
            wall, cpu, peak = cast(tuple[float, float, float], row[phase])
            print(f"| {count:,} | {phase} | {wall:.2f} | {1000 * cpu / count:.2f} | {peak} |")
    print("\n| instances | lock MB | stamp MB | files in .flow | committed files changed by a "
          "fresh-clone no-op |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {int(str(row['instances'])):,} | {row['lock MB']:.1f} | {row['stamp MB']:.1f} "
              f"| {row['.flow files']:,} | {row['changed after']} |")
    for count, timings in planned:
        for phase, (wall, cpu, peak) in timings.items():
            print(f"\n{phase} of {count:,} instances, nothing cached: {wall:.2f} s wall, "
                  f"{cpu:.2f} s CPU, {peak} MB peak (target: under 3 s)", end="")
    print()
    first = {int(str(r["instances"])): r["first run"] for r in rows}
    small, large = min(first), max(first)
    if small != large:
        ratio = (first[large][1] / large) / (first[small][1] / small)  # type: ignore[index]
        print(f"\nfirst-run CPU per instance at {large:,} / at {small:,}: {ratio:.2f}x "
              "(target: within 1.2x)")


if __name__ == "__main__":
    main()
