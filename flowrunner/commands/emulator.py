"""`flow emulator`: serve the bundled provider emulator until interrupted."""

from __future__ import annotations

from typing import TextIO

from ..emulator.server import make_server
from ..errors import UsageError


def serve_emulator(*, host: str, port: int, api_key: str | None, latency: float,
                   faults: list[str], out: TextIO, kind: str = "gateway",
                   task_seconds: float = 0.0, max_running: int = 0) -> int:
    """Listen on ``host:port`` and serve until Ctrl-C; 0 when stopped.

    Raises:
        UsageError: an unknown fault kind, or the address cannot be bound.
    """
    try:
        server = make_server(host, port, api_key=api_key, latency=latency, faults=faults,
                             kind=kind, task_seconds=task_seconds, max_running=max_running)
    except ValueError as exc:
        raise UsageError(f"--fault: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         hint="pick another --port, or 0 for a free one") from None
    server.state.access_log = out
    bound_host, bound_port = server.server_address[:2]
    names = {"gateway": "ElkAPI gateway", "recraft": "Recraft API", "bfl": "BFL API"}
    print(f"{names[kind]} emulator listening on http://{bound_host!s}:{bound_port} "
          f"(Ctrl-C to stop)", file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
