"""The HTTP client: one connection pool per run, retries, error mapping, redaction.

Speaks HTTP through urllib3 (the transport `requests` is built on) directly: a batch of
thousands of fast calls is bound by the client's own CPU, and requests' session layer
(settings merged, hooks, cookies, a prepared copy of every request) measured half of it
(`benchmarks/throughput.py`). Retries 429/5xx and connection failures with
exponential backoff, jitter and `Retry-After`, within the step's deadline; tells the
throttle about 429s; and never resends a paid task submit that may have reached the
provider: whether it may have is decided by the exception's type (a connection that was
never made, versus one that broke after the request was written).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import __version__
from ..cancellation import Cancellation
from ..errors import FlowError, StepFailed, TransportError
from ..limits import max_answer_bytes
from .proxies import NetworkSettings
from .throttle import Throttle
from .watchdog import Watchdog

if TYPE_CHECKING:  # imported when the first client is made: planning never pays for them
    import urllib3

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
# A task submit that failed with one of these was clearly not accepted: safe to resend.
SUBMIT_SAFE_STATUSES = frozenset({429, 503})
CONNECT_TIMEOUT = 10.0
MAX_REDIRECTS = 30  # as requests
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
USER_AGENT = f"flowrunner/{__version__}"
_BASE_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}

_HINTS = {
    400: "the provider rejected the parameters; `flow endpoints ID` lists what it accepts",
    401: "the API key was refused: check the environment variable the recipe names "
         "(provider.api_key_env)",
    402: "the account is out of credits: top up, then run again (finished steps are cached)",
    403: "the key may not use this endpoint, or the balance is exhausted",
    404: "no such endpoint at this address: check provider.base_url",
    413: "the upload is too large for the provider; shrink the input image",
    422: "the provider rejected the parameters; `flow endpoints ID` lists what it accepts",
    429: "the provider is rate limiting: lower `concurrency` or set provider.rate_limit",
}


@dataclass(frozen=True, slots=True)
class FilePart:
    field: str
    filename: str
    path: Path
    content_type: str


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One call to the provider's API (never a download)."""

    method: str
    url: str
    json_body: Any = None
    fields: tuple[tuple[str, str], ...] = ()
    files: tuple[FilePart, ...] = ()
    submit: bool = False  # creates a paid task: resend only when surely not accepted
    provider: str = "default"  # the provider profile whose credential and pacing apply
    headers: tuple[tuple[str, str], ...] = ()  # a recipe's own (never the credential's)
    binary: bool = False  # the answer is a file's bytes (within the answer cap), not JSON


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1


class Client(Protocol):
    """What the scheduler needs of a client: API calls, streamed downloads, redaction,
    and pauses that end when the run is cancelled."""

    redact: Callable[[str], str]

    def pause(self, seconds: float, step_id: str) -> None:
        """Wait ``seconds`` (between polls).

        Raises:
            Cancelled: the run was cancelled first.
        """

    def call(self, request: ApiRequest, *, retries: int, deadline: float,
             step_id: str) -> ApiResponse: ...

    def stream(self, url: str, *, timeout: float, provider: str | None = None
               ) -> AbstractContextManager[tuple[int, dict[str, str], Iterator[bytes]]]: ...

    def close(self) -> None: ...


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): the provider's
    `Retry-After` when given, else exponential backoff with up to 50 % jitter."""
    if retry_after is not None:
        return min(max(0.0, retry_after), BACKOFF_MAX)
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
    return delay * (1 + random.random() * 0.5)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date; None when absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _never_sent(exc: BaseException) -> bool:
    """Whether a connection error happened before the request left this machine: the
    connection was refused, timed out or its name did not resolve. Decided by the types in
    the exception's chain (urllib3 wraps them in MaxRetryError), never by its words."""
    import urllib3

    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (urllib3.exceptions.NewConnectionError,
                                urllib3.exceptions.ConnectTimeoutError,
                                urllib3.exceptions.NameResolutionError)):
            return True
        if isinstance(current, BaseException):
            stack.extend([getattr(current, "reason", None), current.__cause__,
                          current.__context__, *current.args])
    return False


def _in_chain(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or what it wraps (MaxRetryError's reason) is a ``kind``."""
    reason = getattr(exc, "reason", None)
    return isinstance(exc, kind) or isinstance(reason, kind)


def _retryable(exc: BaseException) -> bool:
    """A failure of the connection or of a read, worth trying again (not a bad URL, too
    many redirects, nor a certificate that is not trusted: trying again cannot help)."""
    import urllib3

    if isinstance(exc, (urllib3.exceptions.LocationValueError,
                        urllib3.exceptions.ProxySchemeUnknown)):
        return False
    return not (_in_chain(exc, urllib3.exceptions.ResponseError)  # too many redirects
                or _untrusted(exc))


def _untrusted(exc: BaseException) -> bool:
    """Whether the TLS handshake failed because a certificate was not trusted."""
    import ssl

    import urllib3

    reason = getattr(exc, "reason", None)
    return isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        reason, urllib3.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(reason)


MIN_REDACTED = 8  # a shorter "key" is no secret, and replacing it would mangle any text


class Redactor:
    """Removes the API keys from any text that leaves this module (callable: str → str).

    A key is replaced only where it stands as a whole token (not inside a longer word, a
    host name or a path), and keys shorter than ``MIN_REDACTED`` characters are not looked
    for in text at all: the header that carries a key is redacted by name, never by text.
    """

    def __init__(self, *secrets: str | None) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_REDACTED},
                              key=len, reverse=True)
        self._pattern = re.compile(
            r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, self.secrets)) + r")(?![A-Za-z0-9])"
        ) if self.secrets else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not any(secret in text for secret in self.secrets):
            return text
        return self._pattern.sub("***", text)


def _provider_message(answer: Answer, redact: Callable[[str], str]) -> str:
    """The provider's own words: JSON error message, or the text with HTML stripped."""
    raw = answer.content[:65536]
    text = raw.decode("utf-8", "replace")
    message = ""
    if "json" in answer.headers.get("Content-Type", "") or text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            doc = json.loads(text)
            if isinstance(doc, dict):
                err = doc.get("error")
                if isinstance(err, dict):
                    message = str(err.get("message") or err.get("code") or "")
                elif isinstance(err, str):
                    message = err
                message = message or str(doc.get("message") or doc.get("detail") or "")
    if not message:
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        stripped = re.sub(r"<[^>]+>", " ", title.group(1) if title else text)
        message = " ".join(stripped.split())
    message = redact(message or answer.reason or "no message")
    return message if len(message) <= 300 else message[:297] + "..."


@dataclass(slots=True)
class Answer:
    """One HTTP answer as this module reads it: urllib3's response, the headers that were
    sent (for -vv) and, once read, its body."""

    response: urllib3.BaseHTTPResponse
    sent_headers: dict[str, str]
    elapsed: float
    content: bytes = b""

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Any:  # urllib3's HTTPHeaderDict: names case-insensitive
        return self.response.headers

    @property
    def reason(self) -> str:
        return self.response.reason or ""


class HttpClient:
    """Calls the providers and streams downloads, over one connection pool.

    ``credentials`` maps a provider profile's name to the (header, value) carrying its key
    (`Authorization: Bearer KEY`, `x-key: KEY`, …) and ``throttles`` to its pacing; a
    request names its profile. Downloads never carry a credential. Redirects are followed
    (up to ``MAX_REDIRECTS``); every credential header is dropped on a redirect to another
    host (`Authorization` and `x-key` alike).
    """

    def __init__(self, *, credentials: dict[str, tuple[str, str]], secrets: list[str],
                 throttles: dict[str, Throttle], pool_size: int, log: Any = None,
                 cancel: Cancellation | None = None,
                 network: NetworkSettings | None = None) -> None:
        import urllib3

        # the environment's proxies and TLS roots (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE…)
        self.network = network or NetworkSettings.from_environment()
        proxy_passwords = [p.password for p in self.network.proxies.values()]
        self.redact: Callable[[str], str] = Redactor(*secrets, *proxy_passwords)
        self._credentials = credentials
        self._throttles = throttles
        self._watchdog = Watchdog()
        # once the run is cancelled, every answer and download being read is closed
        self.cancel = cancel or Cancellation()
        self.cancel.on_cancel(self._watchdog.fire_all)
        self.submits_in_flight = 0  # paid submits sent and not yet answered
        self._submits_lock = threading.Lock()
        self.log = log
        secret_headers = {header for header, _ in credentials.values()}
        # retries are this module's (backoff, deadlines, paid submits never resent); the
        # pool only follows redirects, dropping credentials when the host changes
        self._retry = urllib3.Retry(
            total=None, connect=0, read=0, status=0, other=0, redirect=MAX_REDIRECTS,
            raise_on_status=False, remove_headers_on_redirect=(
                {"Authorization", "Cookie", "Proxy-Authorization"} | secret_headers))
        self._pool_size = max(4, pool_size)
        self._pool = urllib3.PoolManager(num_pools=8, maxsize=self._pool_size,
                                         retries=self._retry, **self._trust())
        self._via: dict[str, urllib3.ProxyManager] = {}  # a pool per proxy

    def close(self) -> None:
        self._pool.clear()
        for pool in self._via.values():
            pool.clear()
        self._watchdog.close()  # its thread ends: a process may run many runs

    def _trust(self) -> dict[str, Any]:
        """TLS roots: the environment's CA bundle or folder when set (REQUESTS_CA_BUNDLE,
        CURL_CA_BUNDLE, SSL_CERT_FILE, SSL_CERT_DIR), else certifi's bundle when installed
        (as requests uses), else the system's."""
        if self.network.ca_file or self.network.ca_dir:
            return {"ca_certs": self.network.ca_file, "ca_cert_dir": self.network.ca_dir}
        try:
            import certifi
        except ImportError:
            return {}
        return {"ca_certs": certifi.where()}

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The pool a request to ``url`` goes through: direct, or its proxy's (tunnelled
        with CONNECT for https://, as every HTTP client does)."""
        proxy = self.network.proxy_for(url)
        if proxy is None:
            return self._pool
        manager = self._via.get(proxy.url)
        if manager is None:
            import urllib3

            headers = urllib3.util.make_headers(
                proxy_basic_auth=f"{proxy.username}:{proxy.password or ''}") \
                if proxy.username is not None else None
            manager = self._via.setdefault(proxy.url, urllib3.ProxyManager(
                proxy.url, num_pools=8, maxsize=self._pool_size, retries=self._retry,
                proxy_headers=headers, **self._trust()))
        return manager

    def pause(self, seconds: float, step_id: str) -> None:
        self.cancel.sleep(seconds, step_id)

    def throttle(self, request: ApiRequest) -> Throttle:
        return self._throttles.get(request.provider) or self._throttles["default"]

    def _log_exchange(self, request: ApiRequest, answer: Answer) -> None:
        """-vv: the request line, the headers sent (the one carrying the key shows only its
        scheme) and the headers received."""
        assert self.log is not None
        secret_headers = {header.lower() for header, _ in self._credentials.values()}
        self.log(f"{request.method} {self.redact(request.url)} -> {answer.status} "
                 f"({answer.elapsed:.3f} s)")
        for name, value in answer.sent_headers.items():
            if name.lower() in secret_headers:
                scheme = value.split(" ", 1)[0] if " " in value else ""
                value = f"{scheme} ***".strip()
            self.log(f"  > {name}: {self.redact(str(value))}")
        for name, value in answer.headers.items():
            self.log(f"  < {name}: {self.redact(str(value))}")

    def _headers(self, request: ApiRequest) -> dict[str, str]:
        headers = {**_BASE_HEADERS,
                   "Accept": "*/*" if request.binary else "application/json",
                   **dict(request.headers)}
        credential = self._credentials.get(request.provider)
        if credential is not None:
            headers[credential[0]] = credential[1]
        return headers

    def _open(self, method: str, url: str, *, headers: dict[str, str], timeout: float,
              body: bytes | None = None) -> Answer:
        """Send one request (redirects followed) and return as soon as the answer's head
        has arrived; its body is read by the caller."""
        import urllib3

        started = time.monotonic()
        response = self._manager(url).urlopen(
            method, url, body=body, headers=headers, preload_content=False,
            decode_content=True, redirect=True, retries=self._retry,
            timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout))
        return Answer(response, headers, time.monotonic() - started)

    def _send_once(self, request: ApiRequest, timeout: float) -> Answer:
        headers = self._headers(request)
        body: bytes | None = None
        if request.files or request.fields:
            from urllib3 import encode_multipart_formdata

            # the fields as parts of their own: multipart even with no file to upload
            parts: list[tuple[str, Any]] = list(request.fields)
            for part in request.files:
                parts.append((part.field, (part.filename, part.path.read_bytes(),
                                           part.content_type)))
            body, headers["Content-Type"] = encode_multipart_formdata(parts)
        elif request.json_body is not None and request.method not in ("GET", "DELETE"):
            body = json.dumps(request.json_body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        return self._open(request.method, request.url, headers=headers, timeout=timeout,
                          body=body)

    def call(self, request: ApiRequest, *, retries: int, deadline: float,
             step_id: str) -> ApiResponse:
        """Send an API request, retrying what is worth retrying until ``deadline``.

        Raises:
            StepFailed: a non-2xx answer that retrying did not cure, or a body that is not JSON.
            TransportError: the request could not be made or finished in time;
                ``maybe_sent`` says whether a submit may have reached the provider.
        """
        import urllib3

        if any(self.redact(value) != value for _, value in request.headers):
            raise StepFailed(f"{step_id}: not sent: a header value holds the API key",
                             hint="the key travels only in the provider's own auth header; "
                                  "never put it in `headers:`")
        attempts = 0
        while True:
            self.cancel.check(step_id)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(f"{step_id}: gave up after {attempts} attempt(s): the step's "
                                     "timeout ran out", hint="raise the step's `timeout`")
            throttle = self.throttle(request)
            if not throttle.acquire(deadline, self.cancel):
                raise TransportError(f"{step_id}: timed out waiting for a free slot",
                                     hint="raise the step's `timeout` or lower the load")
            attempts += 1
            try:
                with self._submitting(request.submit):
                    answer = self._send_once(request, remaining)
                    self._read_body(answer, deadline, step_id,
                                    cancellable=not request.submit)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                throttle.release()
                never_sent = _never_sent(exc)
                if not _retryable(exc) or (request.submit and not never_sent) \
                        or attempts > retries:
                    raise self._transport(step_id, request, exc,
                                          maybe_sent=not never_sent) from None
                why = "read timed out" if _in_chain(exc, urllib3.exceptions.ReadTimeoutError) \
                    else _short_reason(exc)
                self._sleep(backoff_delay(attempts), deadline, step_id, self.redact(why))
                continue
            except (StepFailed, TransportError):
                throttle.release()
                raise
            status = answer.status
            throttle.release(throttled=status == 429)
            if self.log:
                self._log_exchange(request, answer)
            if 200 <= status < 300:
                body = answer.content if request.binary else self._json(answer, step_id)
                return ApiResponse(status, body, dict(answer.headers), attempts)
            retry_ok = status in RETRY_STATUSES and (
                not request.submit or status in SUBMIT_SAFE_STATUSES)
            if not retry_ok or attempts > retries:
                raise self._failure(step_id, request, answer, attempts)
            wait = backoff_delay(attempts, parse_retry_after(answer.headers.get("Retry-After")))
            failure = self._failure(step_id, request, answer, attempts)
            self._sleep(wait, deadline, step_id, f"HTTP {status}", failure=failure)

    def _sleep(self, seconds: float, deadline: float, step_id: str, why: str,
               failure: FlowError | None = None) -> None:
        if time.monotonic() + seconds > deadline:
            if failure is not None:
                raise failure
            raise TransportError(f"{step_id}: {why}; retrying would pass the step's timeout",
                                 hint="raise the step's `timeout`, or run again later")
        self.cancel.sleep(seconds, step_id)

    @contextlib.contextmanager
    def _submitting(self, submit: bool) -> Iterator[None]:
        """Count a paid submit while it waits for its answer (an interrupted run says so)."""
        if not submit:
            yield
            return
        with self._submits_lock:
            self.submits_in_flight += 1
        try:
            yield
        finally:
            with self._submits_lock:
                self.submits_in_flight -= 1

    def _read_body(self, answer: Answer, deadline: float, step_id: str, *,
                   cancellable: bool = True) -> None:
        """Read the answer's body within the deadline and the size cap.

        Per-read timeouts do not stop a server that drips a byte at a time, so a watchdog
        closes the connection when the step's deadline passes. A body read to its end gives
        the connection back to the pool; any other ending closes it.
        """
        response = answer.response
        watch = self._watchdog.watch(deadline, response.close, cancellable=cancellable)
        chunks: list[bytes] = []
        size = 0
        limit = max_answer_bytes()
        whole = False
        try:
            while True:
                try:
                    # read1: whatever has arrived, so a drip cannot stall the deadline check
                    chunk = response.read1(65536, decode_content=True)
                except Exception as exc:  # noqa: BLE001 - urllib3/socket errors, mapped below
                    if time.monotonic() >= deadline:
                        raise TransportError(f"{step_id}: the answer did not arrive before the "
                                             "step's timeout", hint="raise the step's "
                                             "`timeout`, or run again later") from None
                    raise TransportError(f"{step_id}: reading the answer failed: "
                                         f"{self.redact(_short_reason(exc))}") from None
                if not chunk:
                    whole = True
                    break
                if time.monotonic() >= deadline:
                    raise TransportError(f"{step_id}: the answer did not arrive before the "
                                         "step's timeout", hint="raise the step's `timeout`, "
                                         "or run again later")
                size += len(chunk)
                if size > limit:
                    raise StepFailed(f"{step_id}: the answer is larger than "
                                     f"{limit >> 20} MB", status=answer.status,
                                     hint="the provider or a proxy misbehaves; run again later")
                chunks.append(chunk)
        finally:
            self._watchdog.cancel(watch)
            _finish(response, whole)
        if time.monotonic() >= deadline and not chunks:
            raise TransportError(f"{step_id}: the answer did not arrive before the step's "
                                 "timeout", hint="raise the step's `timeout`")
        answer.content = b"".join(chunks)

    def _json(self, answer: Answer, step_id: str) -> Any:
        try:
            return json.loads(answer.content)
        except ValueError:
            text = answer.content[:480].decode("utf-8", "replace")
            preview = self.redact(text[:120].strip()) or "(empty)"
            raise StepFailed(
                f"{step_id}: HTTP {answer.status} but the body is not JSON: {preview!r}",
                hint="the provider or a proxy answered with something else; run again later",
                status=answer.status, retryable=True) from None

    def _failure(self, step_id: str, request: ApiRequest, answer: Answer,
                 attempts: int) -> StepFailed:
        status = answer.status
        message = _provider_message(answer, self.redact)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        hint = _HINTS.get(status)
        if status >= 500 or status == 524:
            hint = "the provider failed; run again later: finished steps are cached"
            if request.submit:
                hint += " (a task may have been created: check the provider's dashboard)"
        return StepFailed(f"{step_id}: {request.method} {self.redact(request.url)} answered "
                          f"HTTP {status}{tries}: {message}", hint=hint, status=status)

    def _transport(self, step_id: str, request: ApiRequest, exc: BaseException, *,
                   maybe_sent: bool) -> TransportError:
        import urllib3

        reason = self.redact(_short_reason(exc))
        hint = "check provider.base_url and the network, then run again"
        if _untrusted(exc):
            hint = ("the server's certificate is not trusted; behind a TLS-inspecting proxy, "
                    "set SSL_CERT_FILE or REQUESTS_CA_BUNDLE to its CA bundle")
        elif _in_chain(exc, urllib3.exceptions.ProxyError):
            hint = ("the proxy could not be reached or refused the request: check "
                    "HTTPS_PROXY / HTTP_PROXY, or NO_PROXY for hosts to reach directly")
        elif request.submit and maybe_sent:
            hint = ("the submit may have reached the provider and been billed; check before "
                    "running again")
        return TransportError(f"{step_id}: {request.method} {self.redact(request.url)} failed: "
                              f"{reason}", hint=hint, maybe_sent=maybe_sent)

    @contextlib.contextmanager
    def stream(self, url: str, *, timeout: float, provider: str | None = None
               ) -> Iterator[tuple[int, dict[str, str], Iterator[bytes]]]:
        """GET ``url`` streaming; yields (status, headers, chunks). Without credentials,
        unless ``provider`` names the profile whose API serves the file itself (a video's
        `/content`): its credential then goes along (and never follows a redirect to
        another host).

        Raises:
            TransportError: the connection failed or a read timed out.
        """
        import urllib3

        self.cancel.check("download")
        headers = {**_BASE_HEADERS, "Accept": "*/*"}
        credential = self._credentials.get(provider) if provider else None
        if credential is not None:
            headers[credential[0]] = credential[1]
        try:
            answer = self._open("GET", url, headers=headers, timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransportError(f"download of {self.redact(url)} failed: "
                                 f"{self.redact(_short_reason(exc))}") from None
        response = answer.response
        watch = self._watchdog.watch(time.monotonic() + max(0.0, timeout), response.close)
        read = _Reading(response, url, self.redact)
        try:
            yield response.status, dict(response.headers), read.chunks()
        finally:
            self._watchdog.cancel(watch)
            _finish(response, read.whole)


class _Reading:
    """A download's body, block by block; ``whole`` once it was read to its end."""

    def __init__(self, response: urllib3.BaseHTTPResponse, url: str,
                 redact: Callable[[str], str]) -> None:
        self.response, self.url, self.redact = response, url, redact
        self.whole = False

    def chunks(self) -> Iterator[bytes]:
        try:
            while True:
                # read1: whatever has arrived, so the caller's deadline check keeps running
                chunk = self.response.read1(64 * 1024, decode_content=True)
                if not chunk:
                    self.whole = True
                    return
                yield chunk
        except Exception as exc:  # noqa: BLE001 - urllib3, socket or watchdog close: mapped here
            raise TransportError(f"download of {self.redact(self.url)} broke off or timed "
                                 f"out: {self.redact(_short_reason(exc))}") from None


def _finish(response: urllib3.BaseHTTPResponse, whole: bool) -> None:
    """Give a connection whose answer was read to its end back to the pool; close any
    other (a half-read answer would be read by the next request)."""
    if whole:
        response.release_conn()
    else:
        response.close()
        response.release_conn()


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] ([^')]+)", r"(Read timed out[^)']*)",
                    r"(Connection refused)", r"(Connection reset by peer)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip().rstrip(".")
    if "timed out" in text.lower():
        return "timed out"
    return text[:200] or type(exc).__name__
