"""Wall time of N independent steps against the emulator with latency L at concurrency C,
against the ideal ceil(N/C)·L; and the peak memory of a run that downloads a 200 MB
artifact (it must stream, never hold the file in memory).

The emulator runs in this process on 127.0.0.1; `flow run` is a separate process, timed
whole (start-up included). Re-run it any time:

    python benchmarks/concurrency.py [--n 64] [--c 8] [--latency 0.5] [--mb 200]

Targets: wall ≤ 1.15 × ideal for N=64, C=8, L=0.5 s; peak RSS < 60 MB for 200 MB.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed import as_installed  # a sibling script (sys.path above)

from flowrunner.emulator.server import make_server

KEY = "bench-key"


def _serve(latency: float):
    server = make_server("127.0.0.1", 0, api_key=KEY, latency=latency, plain_images=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _flow(recipe: Path, cache: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in KB, output) of one `flow run` process."""
    probe = ("import resource, subprocess, sys; "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "print(r.returncode); print(r.stdout[-2000:] + r.stderr[-2000:])")
    env = dict(os.environ, ELKAPI_API_KEY=KEY)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "flowrunner", "run",
                          str(recipe), "--cache-dir", str(cache)],
                         capture_output=True, text=True, env=env, check=True).stdout
    wall = time.perf_counter() - started
    rss, code, text = out.split("\n", 2)
    if code.strip() != "0":
        raise SystemExit(f"flow run failed:\n{text}")
    return wall, int(rss), text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--c", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    as_installed()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, {platform.system()}")

    server, base = _serve(args.latency)
    ideal = math.ceil(args.n / args.c) * args.latency
    with tempfile.TemporaryDirectory() as folder:
        walls = []
        for attempt in range(args.repeat):
            recipe = Path(folder) / f"fanout{attempt}.yaml"
            steps = "".join(
                f"  s{i}:\n    uses: recraft.generate_image\n"
                f"    with: {{prompt: \"bench {attempt} {i}\", size: 1024x1024}}\n"
                for i in range(args.n))
            recipe.write_text(f"version: 1\nprovider: {{base_url: {base}}}\n"
                              f"concurrency: {args.c}\nsteps:\n{steps}")
            wall, _, _ = _flow(recipe, Path(folder) / f"cache{attempt}")
            walls.append(wall)
        best = min(walls)
        print(f"N={args.n} C={args.c} L={args.latency}s: ideal {ideal:.2f} s, wall "
              + ", ".join(f"{w:.2f}" for w in walls)
              + f" s → best {best / ideal:.3f}× ideal, median "
              f"{sorted(walls)[len(walls) // 2] / ideal:.3f}× (target ≤ 1.15×)")
    server.shutdown()

    server, base = _serve(0.0)
    with tempfile.TemporaryDirectory() as folder:
        recipe = Path(folder) / "big.yaml"
        recipe.write_text(
            f"version: 1\nprovider: {{base_url: {base}}}\nsteps:\n  big:\n    uses: http\n"
            f"    with:\n      method: POST\n      path: /_emulator/big\n"
            f"      body: {{bytes: {args.mb * 1_000_000}}}\n      artifacts: url\n"
            f"    save: big.png\n")
        wall, rss, _ = _flow(recipe, Path(folder) / "cache")
        saved = Path(folder) / "assets" / "big.png"
        print(f"{args.mb} MB artifact: downloaded, verified and saved "
              f"({saved.stat().st_size:,} bytes) in {wall:.2f} s; peak RSS {rss / 1024:.1f} MB "
              "(target < 60 MB)")
    server.shutdown()


if __name__ == "__main__":
    main()
