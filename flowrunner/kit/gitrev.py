"""Files as they were at a git revision, read with `git show` (no checkout, no work-tree
change). Used by `flow diff` to find the base lock file, recipe and committed assets."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import UsageError


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              check=False, timeout=60)
    except FileNotFoundError:
        raise UsageError("git is not installed", hint="flow diff reads the base with git") \
            from None


class Revision:
    """One revision of the repository that holds ``path``."""

    def __init__(self, path: Path, ref: str) -> None:
        folder = path.resolve().parent
        top = _git(folder, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            raise UsageError(f"{path} is not in a git repository",
                             hint="flow diff compares with a git revision: run it in a clone")
        self.root = Path(top.stdout.decode().strip())
        commit = _git(self.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if commit.returncode != 0:
            raise UsageError(f"no revision {ref!r} in {self.root}",
                             hint="give --base a branch, tag or commit (in a pull request "
                                  "job, the target branch, e.g. origin/main)")
        self.ref = ref
        self.commit = commit.stdout.decode().strip()

    @property
    def short(self) -> str:
        return self.commit[:10]

    def read(self, path: Path) -> bytes | None:
        """``path``'s bytes at this revision, or None when it did not exist there."""
        try:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        shown = _git(self.root, "show", f"{self.commit}:{relative}")
        return shown.stdout if shown.returncode == 0 else None
