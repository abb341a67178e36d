"""Long tasks at scale (issue 28): N tasks of S seconds each at the provider, at most M in
flight (`max_in_flight`), C HTTP calls at once (`concurrency`), against the emulator in its
own process (`--task-seconds S`). Compared, in the same run, with the ideal (N / M rounds
of S seconds) and with a plain ThreadPoolExecutor of M threads that each submit a task and
sleep between polls (the peer).

Reported for each: wall time, peak threads and peak RSS of the process (sampled from
/proc every 0.1 s).

    python benchmarks/tasks.py                             # 2,000 × 10 s, M 500, C 16
    python benchmarks/tasks.py --tasks 200 --seconds 2 --in-flight 50

Targets (issue 28): within 1.25× the ideal; at most 2 × C + 8 threads; under 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-key"
EMULATOR = """
import sys
from flowrunner.emulator.server import make_server
server = make_server("127.0.0.1", 0, api_key=sys.argv[1], pending_polls=0,
                     task_seconds=float(sys.argv[2]), max_running=int(sys.argv[3]))
server.request_queue_size = 1024
print(server.server_address[1], flush=True)
server.serve_forever()
"""

PEER = """
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, key, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request) as reply:
        return json.loads(reply.read())

def one(n):
    task = call("POST", "/suno/submit/lyrics", {"prompt": "a jingle %d" % n})["data"]
    wait = 0.5
    while True:
        time.sleep(wait)
        status = call("GET", "/suno/fetch/" + task)["data"]["status"]
        if status in ("SUCCESS", "FAILURE"):
            return status
        wait = min(wait * 1.5, 10.0)

with ThreadPoolExecutor(threads) as pool:
    done = list(pool.map(one, range(count)))
assert done.count("SUCCESS") == count, done[:5]
"""


def watched(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, int]:
    """(wall seconds, peak threads, peak RSS in MB) of one process, sampled from /proc."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    threads = rss = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            break
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        threads = max(threads, int(fields.get("Threads", "0")))
        rss = max(rss, int(fields.get("VmHWM", "0 kB").split()[0]) // 1024)
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed: "
                         f"{process.stderr.read().decode()[-2000:] if process.stderr else ''}")
    return wall, threads, rss


def recipe(folder: Path, base_url: str, count: int, in_flight: int, concurrency: int) -> Path:
    path = folder / "tasks.yaml"
    path.write_text(
        "version: 1\nname: tasks\n"
        f"concurrency: {concurrency}\n"
        f"provider: {{base_url: \"{base_url}\", max_in_flight: {in_flight}}}\n"
        f"vars:\n  items: {json.dumps(list(range(count)))}\n"
        "defaults: {timeout: 3600}\n"
        "steps:\n"
        "  lyrics:\n"
        "    uses: suno.generate_lyrics\n"
        "    matrix: {n: \"{{ vars.items }}\"}\n"
        "    with: {prompt: \"a jingle {{ matrix.n }}\"}\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    ideal = -(-args.tasks // args.in_flight) * args.seconds
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}; {args.tasks} tasks × {args.seconds:g} s, "
          f"max_in_flight {args.in_flight}, concurrency {args.concurrency}; "
          f"ideal {ideal:g} s")
    emulator = subprocess.Popen([sys.executable, "-c", EMULATOR, KEY, str(args.seconds),
                                 str(args.in_flight)], stdout=subprocess.PIPE, text=True)
    try:
        assert emulator.stdout is not None
        base = f"http://127.0.0.1:{emulator.stdout.readline().strip()}"
        with tempfile.TemporaryDirectory() as folder:
            path = recipe(Path(folder), base, args.tasks, args.in_flight, args.concurrency)
            env = {**os.environ, "ELKAPI_API_KEY": KEY, "FLOW_NO_STAMP": "1"}
            wall, threads, rss = watched([sys.executable, "-m", "flowrunner", "run",
                                          str(path)], Path(folder), env)
            print(f"  flowrunner  {wall:6.1f} s ({wall / ideal:.2f}× ideal)  peak threads "
                  f"{threads} (limit {2 * args.concurrency + 8})  peak RSS {rss} MB")
            if not args.no_peer:
                wall, threads, rss = watched([sys.executable, "-c", PEER, base, KEY,
                                              str(args.tasks), str(args.in_flight)],
                                             Path(folder), env)
                print(f"  pool of {args.in_flight} sleeping threads  {wall:6.1f} s "
                      f"({wall / ideal:.2f}× ideal)  peak threads {threads}  peak RSS {rss} MB")
    finally:
        emulator.terminate()
        emulator.wait()


if __name__ == "__main__":
    main()
