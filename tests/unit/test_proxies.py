"""NO_PROXY and the proxy variables read as requests and curl read them."""

from __future__ import annotations

import pytest

from flowrunner.errors import UsageError
from flowrunner.net.proxies import NetworkSettings, Proxy

PROXY = Proxy("http://proxy:3128")


@pytest.mark.parametrize(("no_proxy", "url", "direct"), [
    ("", "https://api.elkapi.com/x", False),
    ("*", "https://api.elkapi.com/x", True),
    ("elkapi.com", "https://api.elkapi.com/x", True),
    (".elkapi.com", "https://api.elkapi.com/x", True),
    ("elkapi.com", "https://notelkapi.com/x", False),
    ("api.elkapi.com:443", "https://api.elkapi.com/x", True),  # the scheme's own port
    ("api.elkapi.com:80", "https://api.elkapi.com/x", False),
    ("api.elkapi.com:8443", "https://api.elkapi.com:8443/x", True),
    ("api.elkapi.com:8443", "https://api.elkapi.com:9443/x", False),
    ("10.0.0.0/8", "http://10.2.3.4:8080/x", True),
    ("10.0.0.0/8", "http://11.2.3.4/x", False),
    ("::1", "http://[::1]:8080/x", True),
    ("localhost, 127.0.0.1", "http://127.0.0.1:9/x", True),
])
def test_no_proxy(no_proxy: str, url: str, direct: bool) -> None:
    settings = NetworkSettings({"http": PROXY, "https": PROXY},
                               tuple(e.strip() for e in no_proxy.split(",") if e.strip()))
    assert (settings.proxy_for(url) is None) == direct


def test_the_environment_lower_case_first_and_credentials_apart(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://us%40er:p%3Ass@lower:3128")
    monkeypatch.setenv("ALL_PROXY", "proxy.corp:8080")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    settings = NetworkSettings.from_environment()
    assert settings.proxies["https"] == Proxy("http://lower:3128", "us@er", "p:ss")
    assert settings.proxy_for("http://example.com/") == Proxy("http://proxy.corp:8080")
    assert NetworkSettings.from_environment(proxies=False).proxies == {}
    monkeypatch.setenv("https_proxy", "socks5h://lower:1080")
    with pytest.raises(UsageError, match="not an http:// or https:// proxy"):
        NetworkSettings.from_environment()
