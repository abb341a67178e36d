"""How long `flow validate` and `flow plan` take on recipes of 100, 1,000 and 10,000 step
instances, and how long `flow --help` takes to start. Whole processes, start-up included.

Each recipe is built from groups of five instances that look like a brand kit: a logo
(generate_image), its background removed (an upload of the logo's file), and a banner in
three sizes through a matrix. Every group has its own prompt, so templates are distinct.

    python benchmarks/validate.py            # prints a table; targets: 10,000 < 2 s, --help < 0.3 s
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [100, 1_000, 10_000]
REPEAT = 7


def make_recipe(instances: int) -> str:
    lines = ["version: 1", "name: bench", "vars:", "  brand: Acme",
             "  sizes: [1024x1024, 1820x1024, 2048x1024]", "output_dir: out", "steps:"]
    for group in range(instances // 5):
        lines += [
            f"  logo_{group}:",
            "    uses: recraft.generate_image",
            "    with:",
            f"      prompt: \"Logo {group} for {{{{ vars.brand }}}}, a fox\"",
            "      style: digital_illustration",
            "      size: 1024x1024",
            f"    save: logo-{group}.png",
            f"  clean_{group}:",
            "    uses: recraft.remove_background",
            "    with:",
            f"      image: \"{{{{ steps.logo_{group}.files[0] }}}}\"",
            f"    save: clean-{group}.png",
            f"  banner_{group}:",
            "    uses: recraft.generate_image",
            "    matrix: {size: \"{{ vars.sizes }}\"}",
            "    with:",
            f"      prompt: \"Banner {group} for {{{{ vars.brand }}}}\"",
            "      size: \"{{ matrix.size }}\"",
            f"    save: \"banner-{group}-{{{{ matrix.size }}}}.png\"",
        ]
    return "\n".join(lines) + "\n"


def timed(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flowrunner", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, "
          f"python {platform.python_version()}, {platform.system()}")
    helps = [timed("--help") for _ in range(REPEAT)]
    print(f"flow --help: median {statistics.median(helps):.3f} s, min {min(helps):.3f} s "
          "(target < 0.3 s)")
    with tempfile.TemporaryDirectory() as folder:
        for size in SIZES:
            path = Path(folder) / f"bench_{size}.yaml"
            path.write_text(make_recipe(size))
            validate = [timed("validate", str(path)) for _ in range(REPEAT)]
            plan = [timed("plan", str(path)) for _ in range(REPEAT)]
            print(f"{size:>6} instances: validate median {statistics.median(validate):.3f} s "
                  f"(min {min(validate):.3f}), plan median {statistics.median(plan):.3f} s "
                  f"(min {min(plan):.3f})"
                  + ("  (target < 2 s)" if size == 10_000 else ""))


if __name__ == "__main__":
    main()
