"""No-op re-run of a fully cached 1,000-instance recipe, timed as a whole process
(start-up included), alternating with peers on the same machine in the same script:

- doit with 1,000 md5-checked file tasks, and
- DVC with 1,000 stages,

each installed into a throwaway virtual environment here (a peer that cannot be installed
is skipped with the reason). Also reports flowrunner's no-op without its run stamp
(FLOW_NO_STAMP=1), the path taken after a fresh clone restores only the cache.

    python benchmarks/noop.py [--instances 1000] [--rounds 7] [--no-peers]

Target: flowrunner's no-op median below doit's.
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


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_recipe(folder: Path, instances: int) -> Path:
    lines = ["version: 1", "name: noop", "concurrency: 8", "vars:",
             "  sizes: [1024x1024, 1820x1024, 2048x1024, 1024x2048, 1536x1024]", "steps:"]
    for group in range(instances // 5):
        lines += [f"  art_{group}:", "    uses: recraft.generate_image",
                  "    matrix: {size: \"{{ vars.sizes }}\"}",
                  "    with:", f"      prompt: \"Artwork {group}\"",
                  "      size: \"{{ matrix.size }}\"",
                  f"    save: \"art-{group}-{{{{ matrix.size }}}}.png\""]
    path = folder / "noop.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_venv(folder: Path, package: str) -> Path | None:
    venv = folder / f"venv-{package}"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", package], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"  skipping {package}: could not install it ({type(exc).__name__})")
        return None
    return venv


def setup_doit(folder: Path, count: int, sources: list[Path] | None = None
               ) -> list[str] | None:
    """doit in ``folder``/doit: a file task per input (``count`` small text files, or a
    copy of each of ``sources``) as its md5-checked `file_dep`, a copy of it as its
    target; run once so `.doit.db` knows them all. Returns the no-op command (run it in
    that folder)."""
    venv = make_venv(folder, "doit")
    if venv is None:
        return None
    project = folder / "doit"
    (project / "in").mkdir(parents=True)
    (project / "out").mkdir()
    names = []
    for i, source in enumerate(sources if sources is not None else range(count)):
        name = f"{i}{source.suffix}" if isinstance(source, Path) else f"{i}.txt"
        if isinstance(source, Path):
            shutil.copy(source, project / "in" / name)
        else:
            (project / "in" / name).write_text(f"input {i}\n")
        names.append(name)
    (project / "dodo.py").write_text(
        "import shutil\n"
        f"NAMES = {names!r}\n"
        "def task_copy():\n"
        "    for name in NAMES:\n"
        "        yield {'name': name, 'file_dep': [f'in/{name}'],\n"
        "               'targets': [f'out/{name}'],\n"
        "               'actions': [(shutil.copy, [f'in/{name}', f'out/{name}'])]}\n"
        "DOIT_CONFIG = {'check_file_uptodate': 'md5', 'verbosity': 0}\n")
    command = [str(venv / "bin" / "doit"), "-f", "dodo.py"]
    subprocess.run(command, cwd=project, check=True, capture_output=True)
    return command


def setup_dvc(folder: Path, count: int) -> list[str] | None:
    venv = make_venv(folder, "dvc")
    if venv is None:
        return None
    project = folder / "dvc"
    (project / "in").mkdir(parents=True)
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    try:
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        subprocess.run(["dvc", "init", "-q"], cwd=project, check=True, env=env)
        stages = ["stages:"]
        for i in range(count):
            (project / "in" / f"{i}.txt").write_text(f"input {i}\n")
            stages += [f"  s{i}:", f"    cmd: cp in/{i}.txt out{i}.txt", "    deps:",
                       f"      - in/{i}.txt", "    outs:", f"      - out{i}.txt"]
        (project / "dvc.yaml").write_text("\n".join(stages) + "\n")
        subprocess.run(["dvc", "repro", "-q"], cwd=project, check=True, env=env,
                       capture_output=True, timeout=3600)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"  skipping dvc: setup failed ({type(exc).__name__})")
        return None
    return [str(venv / "bin" / "dvc"), "repro", "-q"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-dvc", action="store_true",
                        help="skip DVC (its first build of 1,000 stages takes most of an hour)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, {platform.system()}")
    folder = Path(tempfile.mkdtemp(prefix="flow-noop-"))
    try:
        recipe = make_recipe(folder, args.instances)
        flow = [sys.executable, "-m", "flowrunner", "run", str(recipe), "--mock"]
        print(f"first run of {args.instances} instances (fills the cache) ...", flush=True)
        first = timed(flow, folder)
        print(f"  {first:.1f} s")
        contenders: dict[str, tuple[list[str], Path, dict[str, str] | None]] = {
            "flowrunner": (flow, folder, None),
            "flowrunner, no stamp": (flow, folder, dict(os.environ, FLOW_NO_STAMP="1")),
        }
        if not args.no_peers:
            print("installing peers into throwaway venvs ...", flush=True)
            doit = setup_doit(folder, args.instances)
            if doit:
                contenders["doit (md5)"] = (doit, folder / "doit", None)
            dvc = None if args.no_dvc else setup_dvc(folder, args.instances)
            if dvc:
                contenders["dvc repro"] = (dvc, folder / "dvc", None)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, (command, cwd, env) in contenders.items():
                times[name].append(timed(command, cwd, env))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, values in times.items():
            print(f"{name:<22} median {medians[name]:.3f} s  (min {min(values):.3f}, "
                  f"max {max(values):.3f}, {len(values)} runs)")
        if "doit (md5)" in medians:
            print(f"flowrunner / doit = {medians['flowrunner'] / medians['doit (md5)']:.2f} "
                  "(target < 1)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
