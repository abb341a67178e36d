"""The HTTP client: one pooled `requests.Session` per run, retries, error mapping, redaction.

The only module that imports `requests`. Retry decisions (which statuses, backoff with
jitter, `Retry-After`) come from urllib3's `Retry` policy object; the loop around it is ours
because it must also respect the step's deadline, tell the throttle about 429s and refuse to
resubmit a paid task whose first submit may have gone through.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from . import __version__
from .errors import StepFailed, TransportError
from .throttle import Throttle

if TYPE_CHECKING:  # imported when the first client is made: planning never pays for them
    import requests
    from urllib3.util import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
# A task submit that failed with one of these was clearly not accepted: safe to resend.
SUBMIT_SAFE_STATUSES = frozenset({429, 503})
CONNECT_TIMEOUT = 10.0
USER_AGENT = f"flowrunner/{__version__}"
MAX_JSON_BYTES = int(os.environ.get("FLOW_MAX_ANSWER_MB", "32")) * 1024 * 1024

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


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1


class Redactor:
    """Removes the API key from any text that leaves this module."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret or None

    def __call__(self, text: str) -> str:
        if self.secret and self.secret in text:
            text = text.replace(self.secret, "***")
        return text


def _provider_message(response: requests.Response, redact: Redactor) -> str:
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
    """Calls the provider and streams downloads, over one pooled session."""

    def __init__(self, *, api_key: str | None, pool_size: int, throttle: Throttle,
                 log: Any = None) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.redact = Redactor(api_key)
        self._api_key = api_key
        self.throttle = throttle
        self.log = log
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc from the environment
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool_size * 2),
                              max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def _headers(self, request: ApiRequest) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _send_once(self, request: ApiRequest, timeout: float) -> requests.Response:
        kwargs: dict[str, Any] = {"headers": self._headers(request),
                                  "timeout": (min(CONNECT_TIMEOUT, timeout), timeout),
                                  "allow_redirects": True, "stream": True}
        if request.files or request.fields:
            handles = []
            try:
                files = []
                for part in request.files:
                    handle = open(part.path, "rb")
                    handles.append(handle)
                    files.append((part.field, (part.filename, handle, part.content_type)))
                return self.session.request(request.method, request.url,
                                            data=list(request.fields), files=files, **kwargs)
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
            TransportError: the request could not be made or finished in time.
        """
        import requests
        import urllib3
        from urllib3.util import Retry

        policy = Retry(total=retries, connect=retries, read=retries, status=retries,
                       other=0, allowed_methods=None, status_forcelist=RETRY_STATUSES,
                       backoff_factor=0.5, backoff_max=30, backoff_jitter=0.5,
                       respect_retry_after_header=True, raise_on_status=False)
        attempts = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(f"{step_id}: gave up after {attempts} attempt(s): the step's "
                                     "timeout ran out", hint="raise the step's `timeout`")
            if not self.throttle.acquire(deadline):
                raise TransportError(f"{step_id}: timed out waiting for a free slot",
                                     hint="raise the step's `timeout` or lower the load")
            attempts += 1
            throttled = False
            try:
                response = self._send_once(request, remaining)
            except requests.exceptions.ConnectionError as exc:
                self.throttle.release()
                text = str(exc)
                never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or any(
                    marker in text for marker in ("refused", "NewConnectionError", "NameResolution"))
                if request.submit and not never_sent:
                    raise self._transport(step_id, request, exc, billed=True) from None
                error: Exception = urllib3.exceptions.ProtocolError(text)
                policy = self._increment(policy, request, step_id, error=error, cause=exc)
                self._sleep(policy.get_backoff_time(), deadline, step_id, _short_reason(exc))
                continue
            except requests.exceptions.Timeout as exc:
                self.throttle.release()
                if request.submit:
                    raise self._transport(step_id, request, exc, billed=True) from None
                error = urllib3.exceptions.ReadTimeoutError(None, request.url, str(exc))  # type: ignore[arg-type]
                policy = self._increment(policy, request, step_id, error=error, cause=exc)
                self._sleep(policy.get_backoff_time(), deadline, step_id, "read timed out")
                continue
            except requests.exceptions.RequestException as exc:
                self.throttle.release()
                raise self._transport(step_id, request, exc) from None
            try:
                self._read_body(response, deadline, step_id)
            except (StepFailed, TransportError):
                self.throttle.release()
                raise
            throttled = response.status_code == 429
            self.throttle.release(throttled=throttled)
            if self.log:
                self.log(f"{request.method} {self.redact(request.url)} -> {response.status_code}")
            status = response.status_code
            if 200 <= status < 300:
                return ApiResponse(status, self._json(response, step_id), dict(response.headers),
                                   attempts)
            retry_ok = status in RETRY_STATUSES and (
                not request.submit or status in SUBMIT_SAFE_STATUSES)
            if not retry_ok or policy.is_exhausted() or policy.total == 0:
                raise self._failure(step_id, request, response, attempts)
            try:
                policy = policy.increment(request.method, request.url, response=response.raw)
            except urllib3.exceptions.MaxRetryError:
                raise self._failure(step_id, request, response, attempts) from None
            wait = policy.get_retry_after(response.raw)
            if wait is None:
                wait = policy.get_backoff_time()
            self._sleep(wait, deadline, step_id, f"HTTP {status}",
                        failure=lambda r=response, a=attempts: self._failure(step_id, request, r, a))

    def _increment(self, policy: Retry, request: ApiRequest, step_id: str, *, error: Exception,
                   cause: Exception) -> Retry:
        import urllib3

        try:
            return policy.increment(request.method, request.url, error=error)
        except urllib3.exceptions.MaxRetryError:
            raise self._transport(step_id, request, cause) from None

    def _sleep(self, seconds: float, deadline: float, step_id: str, why: str,
               failure: Any = None) -> None:
        if time.monotonic() + seconds > deadline:
            if failure is not None:
                raise failure()
            raise TransportError(f"{step_id}: {why}; retrying would pass the step's timeout",
                                 hint="raise the step's `timeout`, or run again later")
        time.sleep(max(0.0, seconds))

    def _read_body(self, response: requests.Response, deadline: float, step_id: str) -> None:
        """Read the answer's body within the deadline and the size cap.

        Per-read timeouts do not stop a server that drips a byte at a time, so a watchdog
        closes the connection when the step's deadline passes.
        """
        import threading

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), response.close)
        watchdog.daemon = True
        watchdog.start()
        chunks: list[bytes] = []
        size = 0
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
                if size > MAX_JSON_BYTES:
                    raise StepFailed(f"{step_id}: the answer is larger than "
                                     f"{MAX_JSON_BYTES >> 20} MB", status=response.status_code,
                                     hint="the provider or a proxy misbehaves; run again later")
                chunks.append(chunk)
        finally:
            watchdog.cancel()
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
                   billed: bool = False) -> TransportError:
        reason = self.redact(_short_reason(exc))
        hint = "check provider.base_url and the network, then run again"
        if billed:
            hint = ("the submit may have reached the provider and been billed; check before "
                    "running again")
        return TransportError(f"{step_id}: {request.method} {self.redact(request.url)} failed: "
                              f"{reason}", hint=hint)

    @contextlib.contextmanager
    def stream(self, url: str, *, timeout: float) -> Iterator[tuple[int, dict[str, str],
                                                                      Iterator[bytes]]]:
        """GET ``url`` without credentials, streaming; yields (status, headers, chunks).

        Raises:
            TransportError: the connection failed or a read timed out.
        """
        import requests

        try:
            response = self.session.get(url, stream=True, timeout=(CONNECT_TIMEOUT, timeout),
                                        headers={"Accept": "*/*"})
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"download of {self.redact(url)} failed: "
                                 f"{self.redact(_short_reason(exc))}") from None
        import threading

        watchdog = threading.Timer(max(0.0, timeout), response.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            chunks = self._chunks(response, url)
            yield response.status_code, dict(response.headers), chunks
        finally:
            watchdog.cancel()
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
