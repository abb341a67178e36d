"""The emulator's long tasks (issue 28): tasks that run for a time whatever the polls, a
limit on the tasks one key may have running answered with each provider's own refusal,
and the batch poll routes (Midjourney's list-by-condition, Suno's POST /suno/fetch)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from flowrunner.emulator.server import EmulatorServer, make_server

KEY = "sk-emulated"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    running = make_server("127.0.0.1", 0, api_key=KEY, pending_polls=0, task_seconds=0.4,
                          max_running=2)
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def _call(server: EmulatorServer, method: str, path: str, body: Any = None,
          key: str = KEY) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.server_port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_key_past_its_running_tasks_gets_klings_1303_until_one_finishes(
        server: EmulatorServer) -> None:
    submit = "/kling/v1/videos/text2video"
    first = [_call(server, "POST", submit, {"prompt": f"a fox {n}"}) for n in range(2)]
    assert [status for status, _ in first] == [200, 200]
    status, refused = _call(server, "POST", submit, {"prompt": "a third fox"})
    assert status == 429 and refused["code"] == 1303
    assert "parallel task over resource pack limit" in refused["message"]
    answer = first[0][1]
    task_id = answer.get("task_id") or answer.get("id") or answer["data"]["task_id"]
    status, running = _call(server, "GET", f"{submit}/{task_id}")
    assert status == 200 and running["data"]["status"].lower() == "in_progress"  # still runs
    time.sleep(0.45)  # the tasks' work is done: slots are free again
    assert _call(server, "POST", submit, {"prompt": "a third fox"})[0] == 200


def test_midjourney_says_queue_full_and_answers_many_tasks_in_one_poll(
        server: EmulatorServer) -> None:
    ids = [_call(server, "POST", "/mj/submit/imagine", {"prompt": f"a cup {n}"})[1]["result"]
           for n in range(2)]
    status, full = _call(server, "POST", "/mj/submit/imagine", {"prompt": "a third cup"})
    assert status == 200 and full["code"] == 23 and full["result"] is None
    status, listed = _call(server, "POST", "/mj/task/list-by-condition",
                           {"ids": [*ids, "404404"]})
    assert status == 200 and [task["id"] for task in listed] == ids
    assert {task["status"] for task in listed} <= {"NOT_START", "SUBMITTED", "IN_PROGRESS"}
    time.sleep(0.45)
    _, done = _call(server, "POST", "/mj/task/list-by-condition", {"ids": ids})
    assert [task["status"] for task in done] == ["SUCCESS", "SUCCESS"]
    assert _call(server, "POST", "/mj/task/list-by-condition", {"ids": []})[1] == []


def test_suno_answers_many_tasks_in_one_fetch_and_other_keys_have_their_own_limit(
        server: EmulatorServer) -> None:
    ids = [_call(server, "POST", "/suno/submit/lyrics", {"prompt": f"a jingle {n}"})[1]["data"]
           for n in range(2)]
    assert _call(server, "POST", "/suno/submit/lyrics", {"prompt": "one more"})[0] == 429
    status, many = _call(server, "POST", "/suno/fetch", {"ids": ids, "action": "LYRICS"})
    assert status == 200 and many["code"] == "success"
    assert [task["task_id"] for task in many["data"]] == ids
    other = make_server("127.0.0.1", 0, max_running=1)  # any key: each counted alone
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        assert _call(other, "POST", "/suno/submit/lyrics", {"prompt": "a"}, key="k1")[0] == 200
        assert _call(other, "POST", "/suno/submit/lyrics", {"prompt": "b"}, key="k2")[0] == 200
        assert _call(other, "POST", "/suno/submit/lyrics", {"prompt": "c"}, key="k1")[0] == 429
    finally:
        other.shutdown()
        other.server_close()
