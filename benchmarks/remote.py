"""The shared cache against a real object store (SeaweedFS on loopback, speaking S3).

1. Restore: N cached instances (small PNGs) from the remote into a fresh clone (recipe and
   lock file only, empty local cache): `flow run --frozen --remote-cache s3://…`, against
   a plain bulk download of the same objects with the same library (boto3, a thread pool
   of 16, each object written to a file), also a whole process. Alternating rounds;
   medians, min/max and the ratio.
2. Shards: C calls at latency L split over three `--shard i/3` processes started together
   (concurrency K each), then the gather run (`--frozen`), against the ideal
   C × L / (3 × K). Every call is counted at the emulator: each must be made once.

    python benchmarks/remote.py                  # 1,000 instances, 96 calls at 0.5 s
    python benchmarks/remote.py --count 200 --rounds 3

Target (issue 12): the restore within 1.5x of the bulk download.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import EMULATOR, KEY, make_recipe

from seaweed import running_seaweed, why_not_runnable

BULK = """
import os, sys, boto3
from concurrent.futures import ThreadPoolExecutor
bucket, prefix, folder = sys.argv[1:4]
client = boto3.session.Session().client("s3", config=boto3.session.Config(
    max_pool_connections=16))
names = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
    Bucket=bucket, Prefix=prefix + "/objects/") for item in page.get("Contents", [])]
os.makedirs(folder, exist_ok=True)
def fetch(name):
    data = client.get_object(Bucket=bucket, Key=name)["Body"].read()
    with open(os.path.join(folder, name.rsplit("/", 1)[-1]), "wb") as handle:
        handle.write(data)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(fetch, names))
print(len(names))
"""


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n"
                         f"{done.stderr}")
    return wall


def start_emulator(latency: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen([sys.executable, "-c", EMULATOR, KEY], stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout is not None
    base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
    if latency:
        request = urllib.request.Request(f"{base_url}/_emulator/latency", method="POST",
                                         data=json.dumps({"seconds": latency}).encode())
        urllib.request.urlopen(request).close()
    return server, base_url


def api_calls(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/_emulator/requests") as answer:
        return sum(1 for r in json.loads(answer.read()) if not r["path"].startswith("/files"))


def clone(source: Path, into: Path) -> Path:
    into.mkdir()
    for name in ("batch.yaml", "batch.lock"):
        if (source / name).exists():
            shutil.copy(source / name, into / name)
    return into / "batch.yaml"


def restore(work: Path, env: dict[str, str], count: int, rounds: int) -> None:
    server, base_url = start_emulator()
    try:
        origin = work / "origin"
        origin.mkdir()
        recipe = make_recipe(origin, count, base_url)
        url = "s3://flowbench/restore"
        fill = timed(["flow", "run", str(recipe), "--remote-cache", url], origin, env)
        print(f"filled the remote with {count} instances in {fill:.1f} s")
        times: dict[str, list[float]] = {"flow": [], "bulk": []}
        for round_number in range(rounds):
            target = clone(origin, work / f"clone-{round_number}")
            times["flow"].append(timed(["flow", "run", str(target), "--frozen",
                                        "--remote-cache", url], target.parent, env))
            times["bulk"].append(timed([sys.executable, "-c", BULK, "flowbench", "restore",
                                        str(work / f"bulk-{round_number}")], work, env))
            assert len(list((target.parent / "assets" / "products").iterdir())) == count
    finally:
        server.terminate()
    flow_median, bulk_median = (statistics.median(times[k]) for k in ("flow", "bulk"))
    print(f"\nrestore {count} instances into a fresh clone, {rounds} rounds (median, min-max):")
    for name, label in (("flow", "flow run --frozen --remote-cache"),
                        ("bulk", "bulk download, boto3, 16 threads")):
        values = times[name]
        print(f"  {label:<36} {statistics.median(values):6.2f} s  "
              f"({min(values):.2f}-{max(values):.2f})")
    print(f"  ratio {flow_median / bulk_median:.2f}x (target 1.5x)")


def shards(work: Path, env: dict[str, str], calls: int, latency: float, concurrency: int
           ) -> None:
    server, base_url = start_emulator(latency)
    try:
        origin = work / "sharded"
        origin.mkdir()
        recipe = make_recipe(origin, calls, base_url)
        recipe.write_text(recipe.read_text().replace("concurrency: 16",
                                                     f"concurrency: {concurrency}"))
        url = "s3://flowbench/shards"
        started = time.perf_counter()
        runs = [subprocess.Popen(["flow", "run", str(clone(origin, work / f"shard-{i}")),
                                  "--remote-cache", url, "--shard", f"{i}/3"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for i in (1, 2, 3)]
        for run in runs:
            _, err = run.communicate()
            if run.returncode != 0:
                raise SystemExit(f"a shard failed: {err}")
        sharded = time.perf_counter() - started
        gather = timed(["flow", "run", str(clone(origin, work / "gather")), "--frozen",
                        "--remote-cache", url], work, env)
        made = api_calls(base_url)
    finally:
        server.terminate()
    ideal = calls * latency / (3 * concurrency)
    print(f"\n{calls} calls x {latency} s over 3 shards, concurrency {concurrency} each:")
    print(f"  three shards together   {sharded:6.2f} s  (ideal {ideal:.2f} s: "
          f"{sharded / ideal:.2f}x)")
    print(f"  gather run (--frozen)   {gather:6.2f} s")
    print(f"  calls made at the emulator: {made} (each once: {made == calls})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=96)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    reason = why_not_runnable()
    if reason:
        raise SystemExit(reason)
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="flow-remote-bench-") as folder:
        work = Path(folder)
        with running_seaweed(work / "store", buckets=("flowbench",)) as store:
            env = dict(os.environ, **store.env, ELKAPI_API_KEY=KEY)
            env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
            restore(work, env, args.count, args.rounds)
            shards(work, env, args.calls, args.latency, args.concurrency)


if __name__ == "__main__":
    main()
