"""`flow watch`: the live gallery in a real headless Chromium (driven over its DevTools
protocol): a saved prompt shows on the open page within 5 s, without a manual reload, the
new card highlighted; a broken recipe shows its file:line on the page; Ctrl-C stops it."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, IGNORED

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (.ci/run "
                                                      "installs Debian's chromium)")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DevTools:
    """The few DevTools calls the test needs, over the page's WebSocket."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.next_id = 0

    def call(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=10))
            if message.get("id") == self.next_id:
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, within: float) -> float:
        """Seconds until ``expression`` is true in the page (fails after ``within``)."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            try:
                if self.evaluate(expression):
                    return time.monotonic() - started
            except TimeoutError:
                pass  # the page is reloading
            time.sleep(0.1)
        raise AssertionError(f"not true within {within} s: {expression}")


def _page(devtools_port: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list") as reply:
                pages = [t for t in json.load(reply) if t["type"] == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("Chromium's DevTools did not answer")


def test_a_saved_prompt_shows_on_the_open_page_within_5_s(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=IGNORED)
    recipe = tmp_path / "examples" / "brand_assets.yaml"
    port, devtools_port = _free_port(), _free_port()
    watch = subprocess.Popen([sys.executable, "-m", "flowrunner", "watch", str(recipe), "--mock",
                              "--port", str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    chromium = None
    try:
        assert watch.stdout is not None
        lines: list[str] = []
        for line in watch.stdout:
            lines.append(line)
            if line.startswith("watching"):
                break
        url = lines[-1].split("gallery at ")[1].split()[0]
        assert url == f"http://127.0.0.1:{port}/assets/index.html", lines
        chromium = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={tmp_path / 'profile'}", f"--remote-debugging-port={devtools_port}",
             "--remote-allow-origins=*", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from websockets.sync.client import connect

        with connect(_page(devtools_port), max_size=None) as socket:
            _check_the_page(DevTools(socket), recipe)
    finally:
        if chromium is not None:
            chromium.kill()
            chromium.wait()
        watch.send_signal(signal.SIGINT)
        try:
            code = watch.wait(timeout=5)
        finally:
            watch.kill()
            watch.stdout.close()  # type: ignore[union-attr]
    assert code == 130


def _check_the_page(page: DevTools, recipe: Path) -> None:
    """The card of an edited prompt, then a problem, each on the page within 5 s."""
    page.wait_for("document.querySelectorAll('article.card').length == 10 && "
                  "document.getElementById('flow-live') !== null", within=20)
    first_load = page.evaluate("performance.timeOrigin")
    assert "friendly red fox" in page.evaluate("document.getElementById('logo').innerText")

    recipe.write_text(recipe.read_text().replace("friendly red fox", "friendly blue fox", 1))
    took = page.wait_for(
        "document.getElementById('logo') !== null && "
        "document.getElementById('logo').classList.contains('flow-new') && "
        "document.getElementById('logo').innerText.includes('friendly blue fox') && "
        "document.querySelector('#logo img').complete && "
        "document.querySelector('#logo img').naturalWidth > 0", within=5)
    assert page.evaluate("performance.timeOrigin") != first_load  # it refreshed itself
    # cards the edit did not touch are not highlighted
    assert not page.evaluate("document.getElementById('house_style')"
                             ".classList.contains('flow-new')")
    print(f"the edit showed after {took:.1f} s")

    recipe.write_text(recipe.read_text().replace("steps:", "steps:\n  broken: 7", 1))
    page.wait_for("document.getElementById('flow-live').className == 'error' && "
                  "document.getElementById('flow-live').innerText"
                  ".includes('brand_assets.yaml:')", within=5)


def _events(url: str, kinds: set[str], count: int, within: float) -> list[dict[str, Any]]:
    """The first ``count`` events of ``kinds`` the page's stream sends within ``within``."""
    import http.client

    host, port = url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=within)
    connection.request("GET", "/events")
    reply = connection.getresponse()
    found: list[dict[str, Any]] = []
    kind = None
    deadline = time.monotonic() + within
    while len(found) < count and time.monotonic() < deadline:
        line = reply.readline().decode().strip()
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind in kinds:
            found.append({"kind": kind, **json.loads(line[6:])})
    connection.close()
    return found


def test_a_recipe_broken_at_start_then_fixed_and_a_save_during_a_run(
        tmp_path: Path, emulator: Any) -> None:
    """Review: the page starts at the root while there is no gallery and is sent to the
    gallery once a run writes it; a file saved while a run runs starts another run."""
    from helpers import KEY_ENV, recipe

    good = recipe(tmp_path, emulator.base_url, """
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo v1", size: 1024x1024}
    save: logo.png
""")
    text = good.read_text()
    good.write_text(text.replace("steps:", "steps:\n  broken: 7", 1))
    port = _free_port()
    watch = subprocess.Popen([sys.executable, "-m", "flowrunner", "watch", str(good),
                              "--port", str(port)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             env={**__import__("os").environ, **KEY_ENV})
    try:
        assert watch.stdout is not None
        for line in watch.stdout:
            if line.startswith("watching"):
                break
        url = line.split("gallery at ")[1].split()[0]
        assert url == f"http://127.0.0.1:{port}/", line  # no gallery yet
        with urllib.request.urlopen(url) as page:
            assert b"EventSource" in page.read()
        good.write_text(text)
        (updated,) = _events(url, {"updated"}, 1, within=10)
        assert updated["page"] == "/assets/index.html" and updated["changed"] == ["logo"]
        with urllib.request.urlopen(url.rstrip("/") + updated["page"]) as page:
            assert b"EventSource" in page.read()
        emulator.state.latency = 0.8  # the next run takes a while: save again during it
        good.write_text(text.replace("Logo v1", "Logo v2"))
        time.sleep(0.4)
        good.write_text(text.replace("Logo v1", "Logo v3"))
        seen = _events(url, {"updated"}, 2, within=15)
        assert len(seen) == 2, seen  # the save made mid-run was not lost
        assert "Logo v3" in good.with_suffix(".lock").read_text()
    finally:
        watch.send_signal(signal.SIGINT)
        try:
            watch.wait(timeout=10)
        finally:
            watch.kill()
            watch.stdout.close()  # type: ignore[union-attr]
