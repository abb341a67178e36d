"""The crash log: what an unexpected error leaves for a bug report, so nobody has to run
paid work again to see it (the way pre-commit's error handler does).

Written to `.flow/crash.log` beside the recipe named on the command line (or in
FLOW_CACHE_DIR, or the working directory's `.flow/`), else to a new file of its own in the
temp folder, with the version, the command line, the platform and the full traceback.
Written to a temp file renamed into place: a symlink planted at `crash.log` is replaced,
never followed. The API key is never in it: it lives only in the environment, which is not
written, and the value of every variable that may hold a secret is blanked out of the text
(the ones a recipe's providers name, key-like names, proxy passwords).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .. import __version__

EXIT_CRASH = 70  # EX_SOFTWARE (sysexits.h): not 1 (a step failed), 2, 3 or 4


def _candidates(argv: list[str]) -> list[Path]:
    places = []
    if os.environ.get("FLOW_CACHE_DIR"):
        places.append(Path(os.environ["FLOW_CACHE_DIR"]))
    for arg in argv:
        if arg.endswith((".yaml", ".yml")) and Path(arg).is_file():
            places.append(Path(arg).resolve().parent / ".flow")
            break
    places.append(Path.cwd() / ".flow")
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
    data = redact_secrets(text, argv).encode()
    for folder in _candidates(argv):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return _write_new(folder, data, keep_name="crash.log")
        except OSError:
            continue
    try:  # a name of its own in the shared temp folder (O_EXCL: never someone's link)
        return _write_new(Path(tempfile.gettempdir()), data, keep_name=None)
    except OSError:
        return None


def _write_new(folder: Path, data: bytes, *, keep_name: str | None) -> Path:
    """A new file in ``folder`` holding ``data`` (mode 0600); renamed to ``keep_name``
    when given (replacing a file or link there, never writing through it)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix="flow-crash-", suffix=".log")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if keep_name is None:
            return Path(name)
        os.replace(name, folder / keep_name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return folder / keep_name


_KEY_LIKE = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS",
             "AUTH")
_NAMED = re.compile(r"api_key_env['\"]?\s*:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)")  # YAML or JSON
_USERINFO = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")


def _secret_names(argv: list[str]) -> set[str]:
    """The variables that may hold a secret: every `api_key_env` a recipe on the command
    line names (read as text: the recipe may be what crashed), the built-in providers'
    defaults, and key-like names."""
    names = {"ELKAPI_API_KEY", "FLOW_CACHE_SECRET"}
    for arg in argv:
        if arg.endswith((".yaml", ".yml")):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                names.update(_NAMED.findall(Path(arg).read_text(encoding="utf-8")[:1 << 20]))
    names.update(name for name in os.environ
                 if name.upper().rstrip("S").endswith(_KEY_LIKE))
    return names


def redact_secrets(text: str, argv: Sequence[str] = ()) -> str:
    """Belt and braces: no value of a variable that may hold a secret survives in the log,
    nor a password inside a URL (a proxy's)."""
    values = sorted({os.environ[name] for name in _secret_names(list(argv))
                     if len(os.environ.get(name, "")) >= 8}, key=len, reverse=True)
    for value in values:
        text = text.replace(value, "***")
    return _USERINFO.sub(r"\1***@", text)
