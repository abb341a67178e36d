"""Per-call overhead: N calls at latency L and concurrency C against the emulator,
`flow run` versus a plain `requests` thread pool doing the same calls (POST, parse the JSON,
download the image, write the file), in alternating rounds; wall time, the client's CPU
time (user + system, all threads) and their ratios.

Each side runs in its own process, and so does the emulator (cheap placeholder images), so
neither shares an interpreter lock with the server. Re-run it any time:

    python benchmarks/throughput.py                     # the issue's table
    python benchmarks/throughput.py --case 512:64:0.5 --rounds 5
    TMPDIR=/dev/shm python benchmarks/throughput.py     # files in memory: no disk's cost
    python benchmarks/throughput.py --case 512:64:0 --deleted 20000   # after deletions

Targets (issue 16): flowrunner within 1.1x of the pool's wall at 512 calls, C=64,
L=0.5 s; client CPU per call within 1 ms of the pool's at L=0.
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

KEY = "bench-key"
CASES = ["256:32:0.5", "512:64:0.5", "1024:64:0.5", "512:64:0"]

EMULATOR = """
import sys, threading
from flowrunner.emulator.server import make_server
server = make_server("127.0.0.1", 0, api_key=sys.argv[1], latency=float(sys.argv[2]),
                     plain_images=True)
server.request_queue_size = 1024
print(server.server_address[1], flush=True)
server.serve_forever()
"""

POOL = """
import json, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import requests
base, key, n, c, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
local = threading.local()
def session():
    if not hasattr(local, "s"):
        local.s = requests.Session()
    return local.s
def one(i):
    s = session()
    answer = s.post(base + "/recraft/v1/images/generations", timeout=60,
                    headers={"Authorization": "Bearer " + key},
                    json={"prompt": f"bench {i}", "size": "1024x1024", "model": "recraftv3"})
    answer.raise_for_status()
    url = answer.json()["data"][0]["url"]
    image = s.get(url, timeout=60)
    image.raise_for_status()
    with open(os.path.join(out, f"img-{i}.png"), "wb") as handle:
        handle.write(image.content)
with ThreadPoolExecutor(max_workers=c) as pool:
    list(pool.map(one, range(n)))
"""

TIMED = """
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, usage.ru_utime + usage.ru_stime, done.returncode)
if done.returncode:
    print(done.stdout[-3000:] + done.stderr[-3000:])
"""


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU seconds of the process and its threads) of one command."""
    out = subprocess.run([sys.executable, "-c", TIMED, *command], capture_output=True,
                         text=True, env=env, check=True).stdout
    first, _, rest = out.partition("\n")
    wall, cpu, code = first.split()
    if code != "0":
        raise SystemExit(f"{command[:4]} failed:\n{rest}")
    return float(wall), float(cpu)


def _recipe(folder: Path, base: str, n: int, c: int, tag: str) -> Path:
    path = folder / f"batch-{tag}.yaml"
    path.write_text(
        f"version: 1\nprovider: {{base_url: {base}}}\nconcurrency: {c}\n"
        f"vars: {{ids: {list(range(n))}}}\n"
        "steps:\n  img:\n    uses: recraft.generate_image\n"
        "    matrix: {i: \"{{ vars.ids }}\"}\n"
        f"    with: {{prompt: \"bench {tag} {{{{ matrix.i }}}}\", size: 1024x1024}}\n"
        "    save: \"img-{{ matrix.i }}.png\"\n")
    return path


def _delete_files(folder: Path, count: int) -> None:
    """Create and delete ``count`` empty files in a folder of their own."""
    scratch = Path(tempfile.mkdtemp(dir=folder))
    for number in range(count):
        (scratch / str(number)).touch()
    shutil.rmtree(scratch)


def run_case(case: str, rounds: int, root: Path, *, deleted: int = 0) -> dict[str, float]:
    n, c, latency = case.split(":")
    n_calls, concurrency = int(n), int(c)
    folder = tempfile.mkdtemp(dir=root)  # kept until the end of the run (see main)
    emulator = subprocess.Popen([sys.executable, "-c", EMULATOR, KEY, latency],
                                stdout=subprocess.PIPE, text=True)
    assert emulator.stdout is not None
    base = f"http://127.0.0.1:{emulator.stdout.readline().strip()}"
    env = dict(os.environ, ELKAPI_API_KEY=KEY, FLOW_NO_STAMP="1")
    flow_walls: list[float] = []
    flow_cpus: list[float] = []
    pool_walls: list[float] = []
    pool_cpus: list[float] = []
    try:
        for number in range(rounds):
            tag = f"{case}-{number}".replace(":", "_").replace(".", "_")
            recipe = _recipe(Path(folder), base, n_calls, concurrency, tag)
            out = Path(folder) / f"pool-{tag}"
            out.mkdir()
            sides = [("flow", [sys.executable, "-m", "flowrunner", "run", str(recipe),
                               "--cache-dir", str(Path(folder) / f"cache-{tag}")]),
                     ("pool", [sys.executable, "-c", POOL, base, KEY, n, c, str(out)])]
            if number % 2:
                sides.reverse()  # alternate who goes first
            for name, command in sides:
                if deleted:
                    _delete_files(root, deleted)
                wall, cpu = _timed(command, env)
                (flow_walls if name == "flow" else pool_walls).append(wall)
                (flow_cpus if name == "flow" else pool_cpus).append(cpu)
    finally:
        emulator.terminate()
        emulator.wait(10)
    ideal = -(-n_calls // concurrency) * float(latency)
    result = {"flow": statistics.median(flow_walls), "pool": statistics.median(pool_walls),
              "flow_cpu_ms": statistics.median(flow_cpus) / n_calls * 1000,
              "pool_cpu_ms": statistics.median(pool_cpus) / n_calls * 1000, "ideal": ideal}
    print(f"{n_calls:>5} calls × {latency} s at C={concurrency:<3} "
          f"flowrunner {result['flow']:6.2f} s (min {min(flow_walls):.2f})  "
          f"pool {result['pool']:6.2f} s (min {min(pool_walls):.2f})  "
          f"ratio {result['flow'] / result['pool']:.2f}×  ideal {ideal:.1f} s  "
          f"CPU/call {result['flow_cpu_ms']:.1f} vs {result['pool_cpu_ms']:.1f} ms",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", action="append", metavar="N:C:L",
                        help="calls:concurrency:latency; may be repeated (default: the "
                             "issue's table)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deleted", type=int, default=0, metavar="N",
                        help="create and delete N empty files before each side runs (shows what "
                             "recent deletions cost file creation on this file system)")
    args = parser.parse_args()
    as_installed()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, {platform.system()}; medians of {args.rounds} "
          "alternating rounds", flush=True)
    started = time.perf_counter()
    # one folder for the whole run, removed at its end: on ext4 without a journal (this
    # project's VM), inodes deleted in the last minute or more are skipped when new ones
    # are allocated, so removing a case's 3,000 files made the next case's file creation
    # measurably slower, and flowrunner (three files per call: object, entry, saved copy)
    # three times more than the pool (one)
    with tempfile.TemporaryDirectory() as root:
        print(f"files in {root} ({_filesystem(root)})", flush=True)
        for case in args.case or CASES:
            run_case(case, args.rounds, Path(root), deleted=args.deleted)
    print(f"({time.perf_counter() - started:.0f} s in all)")


def _filesystem(path: str) -> str:
    """The type of the file system holding ``path`` (Linux), for the record."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "file system unknown"
    best = max((m for m in mounts if len(m) > 2 and (path + "/").startswith(
        m[1].rstrip("/") + "/")), key=lambda m: len(m[1]), default=None)
    return f"{best[2]} at {best[1]}" if best else "file system unknown"


if __name__ == "__main__":
    main()
