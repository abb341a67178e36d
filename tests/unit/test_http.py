"""Whether a failed request may be sent again: decided by the exception's type, checked
against the emulator over real sockets (a reset after the request was read, a refused
connection)."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import CANARY_KEY, Emulator
from flowrunner.errors import TransportError
from flowrunner.net.http import ApiRequest, HttpClient, backoff_delay, parse_retry_after
from flowrunner.net.throttle import Throttle


def _client() -> HttpClient:
    return HttpClient(credentials={"default": ("Authorization", f"Bearer {CANARY_KEY}")},
                      secrets=[CANARY_KEY], throttles={"default": Throttle(2)}, pool_size=2)


def _flux_submit(base_url: str) -> ApiRequest:
    return ApiRequest(method="POST", url=f"{base_url}/flux/v1/flux-pro-1.1",
                      json_body={"prompt": "a fox", "width": 1024, "height": 768},
                      submit=True)


def test_a_submit_reset_after_it_was_read_is_never_sent_again(emulator: Emulator) -> None:
    emulator.fault("reset", count=1)
    client = _client()
    with pytest.raises(TransportError) as info:
        client.call(_flux_submit(emulator.base_url), retries=3,
                    deadline=time.monotonic() + 20, step_id="hero")
    assert info.value.maybe_sent is True
    assert "may have reached the provider and been billed" in (info.value.hint or "")
    assert len(emulator.calls()) == 1  # the provider saw it once; we did not resend it
    client.close()


@pytest.mark.slow
def test_a_plain_request_reset_is_retried(emulator: Emulator) -> None:
    emulator.fault("reset", count=1)
    client = _client()
    request = ApiRequest(method="POST", url=f"{emulator.base_url}/recraft/v1/images/generations",
                         json_body={"prompt": "a fox"})
    answer = client.call(request, retries=3, deadline=time.monotonic() + 20, step_id="logo")
    assert answer.status == 200 and answer.attempts == 2
    client.close()


@pytest.mark.slow
def test_a_refused_connection_was_never_sent_so_a_submit_may_retry() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = _client()
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.call(_flux_submit(f"http://127.0.0.1:{port}"), retries=1,
                    deadline=time.monotonic() + 20, step_id="hero")
    assert info.value.maybe_sent is False
    assert "billed" not in (info.value.hint or "")
    assert time.monotonic() - started >= 0.4  # it waited and tried again
    client.close()


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    assert 0.5 <= backoff_delay(1) <= 0.75
    assert 2.0 <= backoff_delay(3) <= 3.0
    assert backoff_delay(20) <= 45.0
    assert backoff_delay(1, retry_after=7) == 7
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_redaction_replaces_whole_tokens_only_and_ignores_toy_keys() -> None:
    from flowrunner.net.http import Redactor

    redact = Redactor("sk-live-0123456789", "a")
    assert redact("key sk-live-0123456789 refused") == "key *** refused"
    assert redact('{"auth": "Bearer sk-live-0123456789"}') == '{"auth": "Bearer ***"}'
    # inside a longer token it is not the key; a one-letter "key" is never looked for
    assert redact("xsk-live-0123456789x at http://a.example/a") == \
        "xsk-live-0123456789x at http://a.example/a"
