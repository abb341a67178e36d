"""The crash log: what an unexpected error leaves for a bug report, so nobody has to run
paid work again to see it (the way pre-commit's error handler does).

Written to `.flow/crash.log` beside the recipe named on the command line (or in
FLOW_CACHE_DIR, or the working directory's `.flow/`), with the version, the command line,
the platform and the full traceback. The API key is never in it: it lives only in the
environment, which is not written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import __version__

EXIT_CRASH = 70  # EX_SOFTWARE (sysexits.h): not 1 (a step failed), 2, 3 or 4


def _candidates(argv: list[str]) -> list[Path]:
    import tempfile

    places = []
    if os.environ.get("FLOW_CACHE_DIR"):
        places.append(Path(os.environ["FLOW_CACHE_DIR"]))
    for arg in argv:
        if arg.endswith((".yaml", ".yml")) and Path(arg).is_file():
            places.append(Path(arg).resolve().parent / ".flow")
            break
    places.append(Path.cwd() / ".flow")
    places.append(Path(tempfile.gettempdir()))
    return places


def write_crash_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the crash report; its path, or None when no folder could take it."""
    import platform  # imported here: `flow --help` and the no-op run never need them
    import traceback

    text = "\n".join([
        f"flowrunner {__version__} crashed: {type(exc).__name__}: {exc}",
        f"command: flow {' '.join(argv)}",
        f"python: {sys.version.split()[0]} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"working directory: {os.getcwd()}",
        "",
        "".join(traceback.format_exception(exc)),
    ])
    text = _redact_secrets(text)
    for folder in _candidates(argv):
        target = folder / "crash.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return target
    return None


def _redact_secrets(text: str) -> str:
    """Belt and braces: no value of a key-like environment variable survives in the log."""
    for name, value in os.environ.items():
        upper = name.upper()
        if len(value) >= 8 and upper.endswith(("KEY", "TOKEN", "SECRET", "PASSWORD")):
            text = text.replace(value, "***")
    return text
