"""The figures of issue 24 (nothing lost, nothing stuck), re-runnable any time:

    python benchmarks/hardening.py                  # all three, the issue's sizes
    python benchmarks/hardening.py --only stress --rounds 5
    python benchmarks/hardening.py --only interrupt --only templates

- stress: first runs of 256 instances at concurrency 64 into fresh folders (plain,
  `--link hardlink`, nested `save:` folders, a SeaweedFS remote), ROUNDS of each: runs,
  failed runs, failed instances. The limit is zero failures.
- interrupt: `flow run` polling a stuck task (step timeout 600 s), then SIGINT or SIGTERM:
  seconds from the signal to the process's exit. The limit is 2 s.
- templates: `flow validate` of a recipe holding each template bomb of the issue: seconds
  to refuse it (exit 3). The limit is 1 s (an interpreter's start included).

Each `flow` is its own process, as a user runs it; the emulator is one process of its own.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "acceptance"))
from installed import as_installed  # noqa: E402 - sibling scripts (sys.path above)

KEY = "bench-key"
EMULATOR = """
import sys
from flowrunner.emulator.server import make_server
server = make_server("127.0.0.1", 0, api_key=sys.argv[1], plain_images=True)
server.request_queue_size = 1024
if len(sys.argv) > 2:
    server.state.faults.append({"kind": "stuck-task", "count": 1000, "retry_after": 0})
print(server.server_address[1], flush=True)
server.serve_forever()
"""
BOMBS = {
    "nested range(2000) loops": "{% for i in range(2000) %}{% for j in range(2000) %}x"
                                "{% endfor %}{% endfor %}",
    "nested range(100000) loops": "{% for i in range(100000) %}{% for j in range(100000) %}"
                                  "{% endfor %}{% endfor %}",
    "center(3000000)": "{{ 'x'|center(3000000) }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
                         "{% endmacro %}{{ f(40) }}",
    "'%3000000s' % x": "{{ '%3000000s' % 'x' }}",
}


def _emulator(*extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", EMULATOR, KEY, *extra],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{process.stdout.readline().strip()}"


def _flow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowrunner", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def stress(rounds: int, root: Path) -> None:
    from helpers import STRESS_INSTANCES as INSTANCES
    from helpers import stress_recipe

    process, base = _emulator()
    env = dict(os.environ, ELKAPI_API_KEY=KEY, FLOW_NO_STAMP="1")
    store = None
    try:
        from seaweed import running_seaweed, why_not_runnable

        if why_not_runnable() is None:
            store = running_seaweed(root / "seaweed")
            env.update(store.__enter__().env)
        print(f"{'variant':<10} {'runs':>5} {'failed runs':>12} {'failed instances':>17} "
              f"{'median s':>9}")
        for variant in ("plain", "hardlink", "nested", "remote"):
            if variant == "remote" and store is None:
                print(f"{variant:<10} skipped: SeaweedFS cannot run here")
                continue
            failed_runs = failed_instances = 0
            walls = []
            for number in range(rounds):
                folder = root / f"{variant}-{number}"
                folder.mkdir()
                path = stress_recipe(folder, base, nested=variant == "nested")
                extra = {"hardlink": ["--link", "hardlink"],
                         "remote": ["--remote-cache", f"s3://flowtest/{uuid.uuid4().hex[:10]}"]
                         }.get(variant, [])
                started = time.perf_counter()
                done = _flow("run", str(path), *extra, env=env)
                walls.append(time.perf_counter() - started)
                if done.returncode != 0 or f"{INSTANCES} called" not in done.stdout:
                    failed_runs += 1
                    failed_instances += sum(1 for line in done.stdout.splitlines()
                                            if line.startswith("  tile["))
            print(f"{variant:<10} {rounds:>5} {failed_runs:>12} {failed_instances:>17} "
                  f"{statistics.median(walls):>9.2f}")
    finally:
        if store is not None:
            store.__exit__(None, None, None)
        process.terminate()


def interrupt(rounds: int, root: Path) -> None:
    process, base = _emulator("stuck")
    env = dict(os.environ, ELKAPI_API_KEY=KEY)
    print(f"{'signal':<8} {'rounds':>6} {'median s':>9} {'max s':>7}  (signal to exit)")
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            took = []
            for number in range(rounds):
                folder = root / f"interrupt-{sig}-{number}"
                folder.mkdir()
                path = folder / "hero.yaml"
                path.write_text(f"version: 1\nprovider: {{base_url: \"{base}\"}}\n"
                                "defaults: {timeout: 600}\nsteps:\n  hero:\n"
                                "    uses: flux.generate\n"
                                f"    with: {{model: flux-dev, prompt: \"fox {number}\"}}\n")
                run = subprocess.Popen([sys.executable, "-m", "flowrunner", "run", str(path)],
                                       env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                time.sleep(2.5)  # submitted, and polling
                started = time.perf_counter()
                run.send_signal(sig)
                run.wait(timeout=600)
                took.append(time.perf_counter() - started)
            print(f"{signal.Signals(sig).name:<8} {rounds:>6} {statistics.median(took):>9.3f} "
                  f"{max(took):>7.3f}")
    finally:
        process.terminate()


def templates(root: Path) -> None:
    env = dict(os.environ)
    print(f"{'template':<28} {'exit':>4} {'seconds':>8}  (flow validate, process included)")
    for name, template in BOMBS.items():
        path = root / f"bomb-{abs(hash(name))}.yaml"
        path.write_text("version: 1\nsteps:\n  logo:\n    uses: recraft.generate_image\n"
                        f"    with: {{prompt: \"{template}\"}}\n")
        started = time.perf_counter()
        done = _flow("validate", str(path), env=env)
        print(f"{name:<28} {done.returncode:>4} {time.perf_counter() - started:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=["stress", "interrupt", "templates"])
    parser.add_argument("--rounds", type=int, default=20, help="stress rounds per variant")
    parser.add_argument("--interrupts", type=int, default=5, help="signals of each kind")
    args = parser.parse_args()
    as_installed()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    chosen = args.only or ["stress", "interrupt", "templates"]
    with tempfile.TemporaryDirectory(prefix="flow-hardening-") as folder:
        root = Path(folder)
        if "stress" in chosen:
            stress(args.rounds, root)
        if "interrupt" in chosen:
            interrupt(args.interrupts, root)
        if "templates" in chosen:
            templates(root)


if __name__ == "__main__":
    main()
