"""Local image steps (`image.*`): Pillow on the input files, results stored like downloads."""

from __future__ import annotations

from typing import Any

from ..media.imaging import run_operation
from ..store.cache import Cache
from .downloads import Artifact, store_bytes
from .preparation import PreparedCall


def perform_local(call: PreparedCall, cache: Cache) -> tuple[dict[str, Any], list[Artifact]]:
    """Run the step's operation on its uploads; (the answer to record, the stored files)."""
    assert call.endpoint.local is not None
    made = run_operation(call.endpoint.local, [u.path for u in call.uploads], call.params,
                         origin=call.instance.id)
    artifacts = [store_bytes(cache, data, origin=f"{call.instance.id} output {n + 1}")
                 for n, (data, _ext) in enumerate(made)]
    response = {"operation": call.endpoint.local,
                "files": [{"sha256": a.sha256, "bytes": a.bytes, "media_type": a.media_type,
                           "width": a.width, "height": a.height} for a in artifacts]}
    return response, artifacts
