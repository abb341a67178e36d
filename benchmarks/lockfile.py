"""Rendering a lock file: flowrunner's YAML writer (recipe/yaml_text.py) against PyYAML's
safe dumper (libyaml's C emitter when installed), on lock entries of N instances shaped like
a real batch's; both must give the same bytes (checked here, and by
tests/unit/test_yaml_text.py on random data).

A lock file is rendered after a run that changed something: one new matrix value in a
50,000-instance recipe, or a `--refresh`, renders all of it.

    python benchmarks/lockfile.py                  # 512, 5,000 and 50,000 instances
    python benchmarks/lockfile.py --sizes 100000

Rule (issue 26): keep the writer only if it saves 10 % or more of such a run.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import time
from typing import Any

import yaml

from flowrunner.kit.lockfile import render_lock


def entries(count: int) -> dict[str, dict[str, Any]]:
    return {f"img[i={n}]": {
        "step": "img", "endpoint": "recraft.generate_image", "key": f"{n:064x}", "credits": 1,
        "outputs": {}, "params": {"prompt": f"Product {n} on a plain background",
                                  "size": "1024x1024", "model": "recraftv3"},
        "artifacts": [{"bytes": 16698, "path": f"assets/products/p-{n}.png",
                       "sha256": f"{n:064x}"}]} for n in range(count)}


def pyyaml_render(recipe: str, data: dict[str, dict[str, Any]], provider: str) -> str:
    from flowrunner.kit import lockfile

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    def dump(value: Any) -> str:
        return yaml.dump(value, Dumper=dumper, sort_keys=True, default_flow_style=False,
                         allow_unicode=True, width=100)

    head = [{"version": lockfile.LOCK_VERSION}, {"recipe": recipe}, {"provider": provider}]
    return (lockfile._HEADER.format(recipe=recipe) + "".join(dump(part) for part in head)
            + dump({"instances": data}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,5000,50000")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}, "
          f"libyaml: {hasattr(yaml, 'CSafeDumper')}")
    for count in (int(n) for n in args.sizes.split(",")):
        data = entries(count)
        started = time.perf_counter()
        ours = render_lock("batch.yaml", data, "https://api.elkapi.com")
        mine = time.perf_counter() - started
        started = time.perf_counter()
        theirs = pyyaml_render("batch.yaml", data, "https://api.elkapi.com")
        plain = time.perf_counter() - started
        same = hashlib.sha256(ours.encode()).digest() == hashlib.sha256(theirs.encode()).digest()
        print(f"  {count:>7,} instances  yaml_text {mine:6.2f} s   PyYAML {plain:6.2f} s   "
              f"{plain / mine:4.1f}x   same bytes: {same}")


if __name__ == "__main__":
    main()
