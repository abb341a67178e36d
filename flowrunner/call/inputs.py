"""Input files of a step: resolving a file parameter to a local file, its digest and type.

Path safety lives here: a local input must lie in the recipe's folder (or a folder given
with --allow-path), symlinks followed; a URL input is downloaded into the cache first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import DownloadError, RenderFailed
from ..net.http import Client
from ..recipe.graph import Instance
from ..recipe.spec import Recipe
from ..store.cache import Cache, sha256_file
from .context import field_location
from .downloads import check_url, describe_file, fetch_artifact


@dataclass(frozen=True, slots=True)
class Upload:
    """A file parameter resolved: the local file, its digest and its type."""

    param: str
    path: Path
    sha256: str
    media_type: str
    ext: str


class FileDigests:
    """sha256 of input files, remembered by (path, size, mtime) for the run."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, int, int], str] = {}

    def paths(self) -> list[str]:
        """Every input file hashed so far."""
        return sorted({path for path, _size, _mtime in self._memo})

    def __call__(self, path: Path) -> str:
        stat = path.stat()
        memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._memo.get(memo_key)
        if digest is None:
            digest = self._memo[memo_key] = sha256_file(path)
        return digest


def resolve_input_file(value: Any, *, recipe: Recipe, instance: Instance, param: str,
                       cache: Cache, digests: FileDigests, client: Client | None,
                       deadline: float, allowed: tuple[Path, ...] = ()) -> Upload | None:
    """Turn a file parameter's value into a local file and its digest.

    Returns None when the value is a URL and no client was given (planning offline).

    Raises:
        RenderFailed: not a string, missing, outside the recipe's folder, or not an image.
    """
    origin = f"{instance.id}.with.{param}"
    where = field_location(recipe, instance, ("with", param))
    if not isinstance(value, str) or not value:
        raise RenderFailed(f"{where}: {origin}: expected a file path or URL, got {value!r}")
    scheme = urlsplit(value).scheme
    if scheme in ("http", "https"):
        if client is None:
            return None
        artifact = fetch_artifact(client, cache, check_url(value, origin), deadline=deadline,
                                  origin=origin)
        return Upload(param, cache.object_path(artifact.sha256), artifact.sha256,
                      artifact.media_type, artifact.ext)
    if scheme and len(scheme) > 1:
        raise RenderFailed(f"{where}: {origin}: unsupported URL scheme {scheme!r}",
                           hint="inputs are local paths or http(s) URLs")
    candidate = Path(value)
    if not candidate.is_absolute():
        candidate = recipe.folder / candidate
    objects = (cache.root / "objects").resolve()
    resolved = candidate.resolve()
    if resolved.is_relative_to(objects):
        sha = resolved.name
    else:
        roots = (recipe.folder.resolve(), *(a.resolve() for a in allowed))
        if not any(resolved.is_relative_to(root) for root in roots):
            raise RenderFailed(f"{where}: {origin}: {value!r} is outside the recipe's folder",
                               hint="input files must live beside the recipe (symlinks that "
                                    "point elsewhere are refused)")
        if not resolved.is_file():
            raise RenderFailed(f"{where}: {origin}: no such file {value!r}",
                               hint=f"paths are relative to the recipe's folder {recipe.folder}")
        sha = digests(resolved)
    try:
        media_type, ext = describe_file(resolved)
    except (DownloadError, OSError) as exc:
        raise RenderFailed(f"{where}: {origin}: {getattr(exc, 'message', exc)}") from None
    return Upload(param, resolved, sha, media_type, ext)
