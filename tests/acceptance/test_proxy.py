"""Real gateways sit behind proxies: the same runs through a real nginx on 127.0.0.1, whose
own errors (rate limits, dead or slow upstreams) come as HTML pages."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers import KEY_ENV, LOGO_CHAIN, recipe

from conftest import Emulator, flow

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
pytestmark = pytest.mark.skipif(not NGINX, reason="nginx is not installed (.ci/run installs "
                                                      "Debian's nginx-light)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nginx(tmp_path: Path, emulator: Emulator):
    """nginx on a free port in front of the emulator, with a few kinds of trouble."""
    port = _free_port()
    dead = _free_port()  # nothing listens here
    upstream = emulator.base_url.removeprefix("http://")
    root = tmp_path / "nginx"
    root.mkdir()
    proxy = ("proxy_set_header Host $http_host; proxy_read_timeout 1s; "
             "proxy_connect_timeout 1s; proxy_http_version 1.1;")
    (root / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  # workers may run as another user than the tests: keep bodies in memory, not in files
  client_body_buffer_size 16m;
  client_max_body_size 64m;
  proxy_buffering off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  limit_req_zone $binary_remote_addr zone=tight:1m rate=1r/m;
  server {{
    listen 127.0.0.1:{port};
    location /limited429/ {{ limit_req zone=tight; limit_req_status 429;
                            proxy_pass http://{upstream}/; {proxy} }}
    location /limited503/ {{ limit_req zone=tight; proxy_pass http://{upstream}/; {proxy} }}
    location /dead/ {{ proxy_pass http://127.0.0.1:{dead}/; {proxy} }}
    location / {{ proxy_pass http://{upstream}; {proxy} }}
  }}
}}
""")
    process = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def _one_clear_line(output: str, needle: str) -> str:
    # the failure summary: "  <instance>: POST <url> answered HTTP <status>...: <message>"
    lines = [ln for ln in output.splitlines() if needle in ln and ": POST " in ln
             and ln.startswith("  ") and " .." not in ln]
    assert lines, output
    line = lines[0]
    assert "<" not in line and ">" not in line  # no HTML reaches the user
    return line


def test_a_run_through_the_proxy_works(tmp_path: Path, emulator: Emulator, nginx: str) -> None:
    path = recipe(tmp_path, nginx, LOGO_CHAIN)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert (tmp_path / "assets" / "logo.svg").is_file()
    assert len(emulator.calls()) == 3


@pytest.mark.slow
def test_proxy_rate_limit_429_with_html_body(
        tmp_path: Path, emulator: Emulator, nginx: str) -> None:
    path = recipe(tmp_path, nginx + "/limited429", LOGO_CHAIN)
    path.write_text(path.read_text().replace("retries: 3", "retries: 1"))
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1, result
    line = _one_clear_line(result.out, "HTTP 429")
    assert line.endswith("429 Too Many Requests")


@pytest.mark.slow
def test_proxy_rate_limit_503_with_html_body(
        tmp_path: Path, emulator: Emulator, nginx: str) -> None:
    path = recipe(tmp_path, nginx + "/limited503", LOGO_CHAIN)
    path.write_text(path.read_text().replace("retries: 3", "retries: 1"))
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1, result
    assert _one_clear_line(result.out, "HTTP 503").endswith("503 Service Temporarily Unavailable")


@pytest.mark.slow
def test_dead_upstream_is_502(tmp_path: Path, emulator: Emulator, nginx: str) -> None:
    path = recipe(tmp_path, nginx + "/dead", LOGO_CHAIN)
    path.write_text(path.read_text().replace("retries: 3", "retries: 1"))
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1
    assert _one_clear_line(result.out, "HTTP 502").endswith("502 Bad Gateway")
    assert "hint: the provider failed; run again later" in result.out


@pytest.mark.slow
def test_slow_upstream_is_504(tmp_path: Path, emulator: Emulator, nginx: str) -> None:
    emulator.state.latency = 3
    path = recipe(tmp_path, nginx, LOGO_CHAIN)
    path.write_text(path.read_text().replace("retries: 3", "retries: 1"))
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1
    assert _one_clear_line(result.out, "HTTP 504").endswith("504 Gateway Time-out")


def test_upstream_dying_mid_run_is_reported_and_resumable(tmp_path: Path, emulator: Emulator,
                                                          nginx: str) -> None:
    path = recipe(tmp_path, nginx, LOGO_CHAIN)
    assert flow("run", path, "--only", "logo", env=KEY_ENV).code == 0
    emulator.server.shutdown()
    emulator.server.server_close()  # the upstream is gone; nginx answers 502
    path.write_text(path.read_text().replace("retries: 3", "retries: 0"))
    result = flow("run", path, env=KEY_ENV, timeout=120)
    assert result.code == 1
    assert "  clean: POST" in result.out and "HTTP 502" in result.out
    assert [ln.split()[-1] for ln in result.out.splitlines()
            if ln.startswith("  logo ")] == ["cached"]
