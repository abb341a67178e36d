"""The network settings every Python HTTP tool reads from the environment: the forward
proxy for a URL (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, upper or lower
case, as requests and curl read them) and the TLS roots (`REQUESTS_CA_BUNDLE`,
`CURL_CA_BUNDLE`, `SSL_CERT_FILE`, `SSL_CERT_DIR`). Plain values, no HTTP library: the
HTTP client builds its connection pools from them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..errors import UsageError

CA_FILE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy: its URL without credentials, and the credentials apart."""

    url: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str, variable: str) -> Proxy:
        """Raises: UsageError: not an http:// or https:// proxy URL."""
        value = text if "://" in text else f"http://{text}"  # `proxy:3128`, as curl takes it
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else text[:40]
            raise UsageError(f"{variable}: {shown}… is not an http:// or https:// proxy",
                             hint="flowrunner speaks to HTTP(S) forward proxies (a SOCKS "
                                  "proxy is not supported); unset the variable to connect "
                                  "directly")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = f":{parts.port}" if parts.port else ""
        return cls(f"{parts.scheme}://{host}{port}",
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """Proxies by URL scheme, the hosts that bypass them, and the TLS roots."""

    proxies: dict[str, Proxy] = field(default_factory=dict)
    no_proxy: tuple[str, ...] = ()
    ca_file: str | None = None
    ca_dir: str | None = None

    @classmethod
    def from_environment(cls, *, proxies: bool = True) -> NetworkSettings:
        """The settings the environment gives (``proxies=False``: connect directly, as a
        run against the local emulator does).

        Raises:
            UsageError: a proxy URL is not HTTP(S), or a CA file or folder does not exist.
        """
        found: dict[str, Proxy] = {}
        no_proxy: tuple[str, ...] = ()
        if proxies:
            for scheme in ("http", "https", "all"):
                for variable in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
                    value = os.environ.get(variable, "").strip()
                    if value:
                        found[scheme] = Proxy.parse(value, variable)
                        break
            raw = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
            no_proxy = tuple(e.strip().lower() for e in raw.split(",") if e.strip())
        ca_file = ca_dir = None
        for variable in CA_FILE_VARIABLES:
            if os.environ.get(variable):
                ca_file = _existing(os.environ[variable], variable, folder=False)
                break
        if os.environ.get("SSL_CERT_DIR"):
            ca_dir = _existing(os.environ["SSL_CERT_DIR"], "SSL_CERT_DIR", folder=True)
        return cls(found, no_proxy, ca_file, ca_dir)

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or None to connect directly."""
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme) or self.proxies.get("all")
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        if proxy is None or self.bypasses(parts.hostname or "", port):
            return None
        return proxy

    def bypasses(self, host: str, port: int | None) -> bool:
        """Whether NO_PROXY names ``host`` (an entry is `*`, a host and its subdomains
        with or without a leading dot, an address, an address range `10.0.0.0/8`, each
        optionally with `:port`)."""
        host = host.lower().strip("[]")
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
            if entry_port and port is not None and entry_port != str(port):
                continue
            name = name.strip("[]")
            if "/" in name:
                if _in_network(host, name):
                    return True
                continue
            name = name.lstrip(".")
            if host == name or host.endswith("." + name):
                return True
        return False


def _has_port(entry: str) -> bool:
    """`host:port` or `[v6]:port`, but not a bare IPv6 address."""
    if entry.startswith("["):
        return "]:" in entry
    return entry.count(":") == 1


def _in_network(host: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _existing(path: str, variable: str, *, folder: bool) -> str:
    """Raises: UsageError: ``path`` is not an existing file (or folder)."""
    if (os.path.isdir(path) if folder else os.path.isfile(path)):
        return path
    raise UsageError(f"{variable}={path}: no such {'folder' if folder else 'file'}",
                     hint="point it at the PEM bundle of certificate authorities to trust, "
                          "or unset it to use the default roots")
