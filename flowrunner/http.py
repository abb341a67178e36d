"""The HTTP client: one pooled `requests.Session` per run, retries, error mapping, redaction.

The only module that imports `requests`. Retries 429/5xx and connection failures with
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
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__
from .errors import FlowError, StepFailed, TransportError
from .limits import max_answer_bytes
from .throttle import Throttle
from .watchdog import Watchdog

if TYPE_CHECKING:  # imported when the first client is made: planning never pays for them
    import requests

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
# A task submit that failed with one of these was clearly not accepted: safe to resend.
SUBMIT_SAFE_STATUSES = frozenset({429, 503})
CONNECT_TIMEOUT = 10.0
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
USER_AGENT = f"flowrunner/{__version__}"

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
    """What the scheduler needs of a client: API calls, streamed downloads, redaction."""

    redact: Callable[[str], str]

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
    """Whether a requests connection error happened before the request left this machine:
    the connection was refused, timed out or its name did not resolve. Decided by the types
    in the exception's chain (requests wraps urllib3's errors), never by its words."""
    import requests
    import urllib3

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
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


def _provider_message(response: requests.Response, redact: Callable[[str], str]) -> str:
    """The provider's own words: JSON error message, or the text with HTML stripped."""
    raw = response.content[:65536]
    text = raw.decode("utf-8", "replace")
    message = ""
    if "json" in response.headers.get("Content-Type", "") or text.lstrip().startswith("{"):
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
    message = redact(message or response.reason or "no message")
    return message if len(message) <= 300 else message[:297] + "..."


class HttpClient:
    """Calls the providers and streams downloads, over one pooled session.

    ``credentials`` maps a provider profile's name to the (header, value) carrying its key
    (`Authorization: Bearer KEY`, `x-key: KEY`, …) and ``throttles`` to its pacing; a
    request names its profile. Downloads never carry a credential.
    """

    def __init__(self, *, credentials: dict[str, tuple[str, str]], secrets: list[str],
                 throttles: dict[str, Throttle], pool_size: int, log: Any = None) -> None:
        from requests.adapters import HTTPAdapter

        self.redact: Callable[[str], str] = Redactor(*secrets)
        self._credentials = credentials
        self._throttles = throttles
        self._watchdog = Watchdog()
        self.log = log
        self.session = _make_session({header for header, _ in credentials.values()})
        self.session.trust_env = False  # no proxies or .netrc from the environment
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool_size * 2),
                              max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def throttle(self, request: ApiRequest) -> Throttle:
        return self._throttles.get(request.provider) or self._throttles["default"]

    def _log_exchange(self, request: ApiRequest, response: requests.Response) -> None:
        """-vv: the request line, the headers sent (the one carrying the key shows only its
        scheme) and the headers received."""
        assert self.log is not None
        secret_headers = {header.lower() for header, _ in self._credentials.values()}
        self.log(f"{request.method} {self.redact(request.url)} -> {response.status_code} "
                 f"({response.elapsed.total_seconds():.3f} s)")
        for name, value in response.request.headers.items():
            if name.lower() in secret_headers:
                scheme = value.split(" ", 1)[0] if " " in value else ""
                value = f"{scheme} ***".strip()
            self.log(f"  > {name}: {self.redact(str(value))}")
        for name, value in response.headers.items():
            self.log(f"  < {name}: {self.redact(str(value))}")

    def _headers(self, request: ApiRequest) -> dict[str, str]:
        headers = {"Accept": "*/*" if request.binary else "application/json",
                   **dict(request.headers)}
        credential = self._credentials.get(request.provider)
        if credential is not None:
            headers[credential[0]] = credential[1]
        return headers

    def _send_once(self, request: ApiRequest, timeout: float) -> requests.Response:
        kwargs: dict[str, Any] = {"headers": self._headers(request),
                                  "timeout": (min(CONNECT_TIMEOUT, timeout), timeout),
                                  "allow_redirects": True, "stream": True}
        if request.files or request.fields:
            handles = []
            try:
                # the fields as parts of their own: multipart even with no file to upload
                # (requests would send fields alone url-encoded, which multipart APIs refuse)
                files: list[tuple[str, Any]] = [(name, (None, value))
                                                for name, value in request.fields]
                for part in request.files:
                    handle = open(part.path, "rb")
                    handles.append(handle)
                    files.append((part.field, (part.filename, handle, part.content_type)))
                return self.session.request(request.method, request.url, files=files,
                                            **kwargs)
            finally:
                for handle in handles:
                    handle.close()
        if request.json_body is not None and request.method not in ("GET", "DELETE"):
            kwargs["json"] = request.json_body
        return self.session.request(request.method, request.url, **kwargs)

    def call(self, request: ApiRequest, *, retries: int, deadline: float,
             step_id: str) -> ApiResponse:
        """Send an API request, retrying what is worth retrying until ``deadline``.

        Raises:
            StepFailed: a non-2xx answer that retrying did not cure, or a body that is not JSON.
            TransportError: the request could not be made or finished in time;
                ``maybe_sent`` says whether a submit may have reached the provider.
        """
        import requests

        if any(self.redact(value) != value for _, value in request.headers):
            raise StepFailed(f"{step_id}: not sent: a header value holds the API key",
                             hint="the key travels only in the provider's own auth header; "
                                  "never put it in `headers:`")
        attempts = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(f"{step_id}: gave up after {attempts} attempt(s): the step's "
                                     "timeout ran out", hint="raise the step's `timeout`")
            throttle = self.throttle(request)
            if not throttle.acquire(deadline):
                raise TransportError(f"{step_id}: timed out waiting for a free slot",
                                     hint="raise the step's `timeout` or lower the load")
            attempts += 1
            try:
                response = self._send_once(request, remaining)
            except requests.exceptions.RequestException as exc:
                throttle.release()
                never_sent = _never_sent(exc)
                retryable = isinstance(exc, (requests.exceptions.ConnectionError,
                                             requests.exceptions.Timeout))
                if not retryable or (request.submit and not never_sent) or attempts > retries:
                    raise self._transport(step_id, request, exc,
                                          maybe_sent=not never_sent) from None
                why = "read timed out" if isinstance(exc, requests.exceptions.ReadTimeout) \
                    else _short_reason(exc)
                self._sleep(backoff_delay(attempts), deadline, step_id, self.redact(why))
                continue
            try:
                self._read_body(response, deadline, step_id)
            except (StepFailed, TransportError):
                throttle.release()
                raise
            status = response.status_code
            throttle.release(throttled=status == 429)
            if self.log:
                self._log_exchange(request, response)
            if 200 <= status < 300:
                body = response.content if request.binary else self._json(response, step_id)
                return ApiResponse(status, body, dict(response.headers), attempts)
            retry_ok = status in RETRY_STATUSES and (
                not request.submit or status in SUBMIT_SAFE_STATUSES)
            if not retry_ok or attempts > retries:
                raise self._failure(step_id, request, response, attempts)
            wait = backoff_delay(attempts, parse_retry_after(response.headers.get("Retry-After")))
            failure = self._failure(step_id, request, response, attempts)
            self._sleep(wait, deadline, step_id, f"HTTP {status}", failure=failure)

    def _sleep(self, seconds: float, deadline: float, step_id: str, why: str,
               failure: FlowError | None = None) -> None:
        if time.monotonic() + seconds > deadline:
            if failure is not None:
                raise failure
            raise TransportError(f"{step_id}: {why}; retrying would pass the step's timeout",
                                 hint="raise the step's `timeout`, or run again later")
        time.sleep(max(0.0, seconds))

    def _read_body(self, response: requests.Response, deadline: float, step_id: str) -> None:
        """Read the answer's body within the deadline and the size cap.

        Per-read timeouts do not stop a server that drips a byte at a time, so a watchdog
        closes the connection when the step's deadline passes.
        """
        watch = self._watchdog.watch(deadline, response.close)
        chunks: list[bytes] = []
        size = 0
        limit = max_answer_bytes()
        try:
            while True:
                try:
                    # read1: whatever has arrived, so a drip cannot stall the deadline check
                    chunk = response.raw.read1(65536, decode_content=True)
                except Exception as exc:  # noqa: BLE001 - urllib3/socket errors, mapped below
                    if time.monotonic() >= deadline:
                        raise TransportError(f"{step_id}: the answer did not arrive before the "
                                             "step's timeout", hint="raise the step's "
                                             "`timeout`, or run again later") from None
                    raise TransportError(f"{step_id}: reading the answer failed: "
                                         f"{self.redact(_short_reason(exc))}") from None
                if not chunk:
                    break
                if time.monotonic() >= deadline:
                    raise TransportError(f"{step_id}: the answer did not arrive before the "
                                         "step's timeout", hint="raise the step's `timeout`, "
                                         "or run again later")
                size += len(chunk)
                if size > limit:
                    raise StepFailed(f"{step_id}: the answer is larger than "
                                     f"{limit >> 20} MB", status=response.status_code,
                                     hint="the provider or a proxy misbehaves; run again later")
                chunks.append(chunk)
        finally:
            self._watchdog.cancel(watch)
            response.close()
        if time.monotonic() >= deadline and not chunks:
            raise TransportError(f"{step_id}: the answer did not arrive before the step's "
                                 "timeout", hint="raise the step's `timeout`")
        response._content = b"".join(chunks)  # requests' own attribute: .json() and .text use it

    def _json(self, response: requests.Response, step_id: str) -> Any:
        try:
            return response.json()
        except ValueError:
            preview = self.redact(response.text[:120].strip()) or "(empty)"
            raise StepFailed(
                f"{step_id}: HTTP {response.status_code} but the body is not JSON: {preview!r}",
                hint="the provider or a proxy answered with something else; run again later",
                status=response.status_code, retryable=True) from None

    def _failure(self, step_id: str, request: ApiRequest, response: requests.Response,
                 attempts: int) -> StepFailed:
        status = response.status_code
        message = _provider_message(response, self.redact)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        hint = _HINTS.get(status)
        if status >= 500 or status == 524:
            hint = "the provider failed; run again later: finished steps are cached"
            if request.submit:
                hint += " (a task may have been created: check the provider's dashboard)"
        return StepFailed(f"{step_id}: {request.method} {self.redact(request.url)} answered "
                          f"HTTP {status}{tries}: {message}", hint=hint, status=status)

    def _transport(self, step_id: str, request: ApiRequest, exc: Exception, *,
                   maybe_sent: bool) -> TransportError:
        reason = self.redact(_short_reason(exc))
        hint = "check provider.base_url and the network, then run again"
        if request.submit and maybe_sent:
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
        import requests

        headers = {"Accept": "*/*"}
        credential = self._credentials.get(provider) if provider else None
        if credential is not None:
            headers[credential[0]] = credential[1]
        try:
            response = self.session.get(url, stream=True, timeout=(CONNECT_TIMEOUT, timeout),
                                        headers=headers)
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"download of {self.redact(url)} failed: "
                                 f"{self.redact(_short_reason(exc))}") from None
        watch = self._watchdog.watch(time.monotonic() + max(0.0, timeout), response.close)
        try:
            chunks = self._chunks(response, url)
            yield response.status_code, dict(response.headers), chunks
        finally:
            self._watchdog.cancel(watch)
            response.close()

    def _chunks(self, response: requests.Response, url: str) -> Iterator[bytes]:
        try:
            while True:
                # read1: whatever has arrived, so the caller's deadline check keeps running
                chunk = response.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    return
                yield chunk
        except Exception as exc:  # noqa: BLE001 - urllib3, socket or watchdog close: mapped here
            raise TransportError(f"download of {self.redact(url)} broke off or timed out: "
                                 f"{self.redact(_short_reason(exc))}") from None


def _make_session(secret_headers: set[str]) -> requests.Session:
    """A session that drops every credential header on a redirect to another host
    (requests itself drops only `Authorization`; `x-key` would follow the redirect)."""
    import requests

    class _Session(requests.Session):
        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            super().rebuild_auth(prepared_request, response)
            if self.should_strip_auth(response.request.url, prepared_request.url):
                for name in secret_headers:
                    prepared_request.headers.pop(name, None)

    return _Session()


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
