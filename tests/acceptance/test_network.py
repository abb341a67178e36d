"""The environment's network settings, as every Python HTTP client reads them: a real
forward proxy on loopback (tinyproxy, from Debian) for http:// and, tunnelled with
CONNECT, https:// providers; NO_PROXY; a self-signed CA through SSL_CERT_FILE and
REQUESTS_CA_BUNDLE (issue 24, defect 8)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import KEY_ENV, recipe

from conftest import CANARY_KEY, Emulator, flow

TINYPROXY = shutil.which("tinyproxy")
LOGO = """
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo", size: 1024x1024}
    save: logo.png
"""


# this machine (like many CI images) sets them all to the system bundle: a test names its own
NO_CA = {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "", "SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tinyproxy:
    def __init__(self, folder: Path, *, auth: str | None = None) -> None:
        self.port = _free_port()
        self.log = folder / "tinyproxy.log"
        conf = folder / "tinyproxy.conf"
        conf.write_text(f"Port {self.port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\n"
                        f'LogFile "{self.log}"\nLogLevel Info\nAllow 127.0.0.1\n'
                        + (f"BasicAuth {auth.replace(':', ' ')}\n" if auth else ""))
        self.process = subprocess.Popen([str(TINYPROXY), "-d", "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert time.monotonic() < deadline, "tinyproxy did not start"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logged(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    if TINYPROXY is None:
        pytest.skip("tinyproxy is not installed (.ci/run installs Debian's tinyproxy)")
    folder = tmp_path / "tinyproxy"
    folder.mkdir()
    proxy = Tinyproxy(folder)
    yield proxy
    proxy.stop()


def _requests_via_proxy(emulator: Emulator) -> list[str | None]:
    return [r.get("via") for r in emulator.requests()]


def test_http_proxy_carries_the_calls_and_no_proxy_bypasses_it(tmp_path: Path, emulator: Emulator,
                                                               tinyproxy) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO)
    env = {**KEY_ENV, "HTTP_PROXY": tinyproxy.url, "NO_PROXY": "example.invalid"}
    result = flow("run", path, env=env)
    assert result.code == 0, result
    vias = _requests_via_proxy(emulator)
    assert vias and all(v and "tinyproxy" in v for v in vias), vias
    assert CANARY_KEY not in tinyproxy.logged()  # the proxy logs the request line only
    emulator.reset()
    env["NO_PROXY"] = "localhost,127.0.0.0/8"
    direct = flow("run", path, "--refresh", "logo", env=env)
    assert direct.code == 0, direct
    assert _requests_via_proxy(emulator) and not any(_requests_via_proxy(emulator))


def test_a_proxy_that_is_down_is_a_clear_error(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO)
    path.write_text(path.read_text().replace("retries: 3", "retries: 0"))
    result = flow("run", path, env={**KEY_ENV, "http_proxy": f"http://127.0.0.1:{_free_port()}"})
    assert result.code == 1, result
    assert "check HTTPS_PROXY / HTTP_PROXY" in result.out and "Traceback" not in result.both
    bad = flow("run", path, env={**KEY_ENV, "HTTP_PROXY": "socks5://127.0.0.1:1080"})
    assert bad.code == 2 and "not an http:// or https:// proxy" in bad.err, bad


def test_mock_runs_never_go_through_a_proxy(tmp_path: Path, tinyproxy) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", LOGO)
    env = {"HTTP_PROXY": f"http://127.0.0.1:{_free_port()}", "HTTPS_PROXY": "http://x:1"}
    assert flow("run", path, "--mock", env=env).code == 0


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA and a certificate it signed for 127.0.0.1 (EC keys: fast to make)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=flowrunner test CA")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return folder


@pytest.fixture
def tls(certificates: Path, emulator: Emulator) -> Iterator[tuple[str, Path]]:
    """The emulator served over TLS with a certificate from a self-signed CA."""
    folder = certificates
    from flowrunner.emulator.server import make_server

    server = make_server("127.0.0.1", 0, api_key=CANARY_KEY)
    server.state = emulator.server.state  # the same requests, files and faults
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", folder / "ca.pem"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_private_ca_is_trusted_when_named_and_only_then(tmp_path: Path, tls,
                                                          variable: str) -> None:
    base_url, ca = tls
    path = recipe(tmp_path, base_url, LOGO)
    refused = flow("run", path, env={**KEY_ENV, **NO_CA})
    assert refused.code == 1, refused
    assert "certificate" in refused.out.lower() and "Traceback" not in refused.both
    trusted = flow("run", path, env={**KEY_ENV, **NO_CA, variable: str(ca)})
    assert trusted.code == 0, trusted
    assert (tmp_path / "assets" / "logo.png").is_file()
    missing = flow("run", path, "--refresh", "logo",
                   env={**KEY_ENV, **NO_CA, variable: str(tmp_path / "nope.pem")})
    assert missing.code == 2 and f"{variable}=" in missing.err, missing


def test_https_goes_through_the_proxy_in_a_connect_tunnel(tmp_path: Path, tls,
                                                          tinyproxy) -> None:
    base_url, ca = tls
    path = recipe(tmp_path, base_url, LOGO)
    result = flow("run", path, env={**KEY_ENV, **NO_CA, "HTTPS_PROXY": tinyproxy.url,
                                    "SSL_CERT_FILE": str(ca)})
    assert result.code == 0, result
    assert f"CONNECT 127.0.0.1:{base_url.rsplit(':', 1)[1]}" in tinyproxy.logged()
