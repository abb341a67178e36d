"""The benchmarks measure flowrunner as `pip install .` leaves it: its modules compiled to
bytecode. An editable checkout under PYTHONDONTWRITEBYTECODE=1 (as some CI images set)
would otherwise compile every module in every `flow` process, about 70 ms of CPU each."""

from __future__ import annotations

import compileall
import os


def as_installed() -> None:
    """Compile the flowrunner package being measured, as pip does when it installs one."""
    import flowrunner

    compileall.compile_dir(os.path.dirname(flowrunner.__file__), quiet=1)
