"""The providers' own clients against `flow emulator`, as a user would point them at it
(issue 25): OpenAI's SDK for GPT image generation and edits (several images, sent as
`image[]`), Replicate's client for an official model and a community model version,
midjourney-proxy's documented sequence (imagine, fetch, action, modal, change) with curl's
plain HTTP, and new-api's Suno calls."""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
from typing import Any

import pytest

from conftest import CANARY_KEY


def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {CANARY_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_openai_sdk_generates_and_edits_with_current_gpt_image_models(served_emulator: str) -> None:
    openai = pytest.importorskip("openai")
    from flowrunner.emulator.images import png

    client = openai.OpenAI(api_key=CANARY_KEY, base_url=f"{served_emulator}/v1")
    with client:
        _gpt_images(openai, client, png)


def _gpt_images(openai: Any, client: Any, png: Any) -> None:
    made = client.images.generate(model="gpt-image-2", prompt="a skyline", size="2048x1152",
                                  quality="high")
    assert made.data and made.data[0].b64_json
    pictures = [("a.png", io.BytesIO(png(256, 256, name)), "image/png") for name in "abc"]
    edited = client.images.edit(model="gpt-image-1.5", prompt="one poster", image=pictures,
                                input_fidelity="high")
    assert edited.data and base64.b64decode(edited.data[0].b64_json or "")[:4] == b"\x89PNG"
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        client.images.generate(model="gpt-image-1", prompt="a skyline")  # shut down
    with pytest.raises(openai.BadRequestError, match="Invalid size"):
        client.images.generate(model="gpt-image-1.5", prompt="a skyline", size="2048x1152")


@pytest.mark.slow
def test_replicate_client_runs_an_official_model_and_a_community_version(
        served_emulator: str) -> None:
    replicate = pytest.importorskip("replicate")
    client = replicate.Client(api_token=CANARY_KEY, base_url=f"{served_emulator}/replicate")
    try:
        official = client.run("black-forest-labs/flux-schnell", input={"prompt": "a fox"})
        first = official[0] if isinstance(official, list) else official
        assert str(first).startswith(served_emulator)
        version = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
        community = client.run(f"someone/fox-model:{version}", input={"prompt": "a fox"})
        assert str(community[0] if isinstance(community, list) else community).startswith(
            served_emulator)
    finally:
        client._client.close()  # its httpx pool (the client has no close of its own)


def _wait(base: str, task_id: str, *, until: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task = _call(base, "GET", f"/mj/task/{task_id}/fetch")
        if task["status"] in until:
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


@pytest.mark.slow
def test_midjourney_proxy_sequence_imagine_fetch_action_modal_change(served_emulator: str) -> None:
    submitted = _call(served_emulator, "POST", "/mj/submit/imagine", {"prompt": "a cosy cafe"})
    assert submitted["code"] == 1
    board = _wait(served_emulator, submitted["result"], until=("SUCCESS",))
    upscale = next(b for b in board["buttons"] if b["label"] == "U1")
    pressed = _call(served_emulator, "POST", "/mj/submit/action",
                    {"customId": upscale["customId"], "taskId": board["id"]})
    upscaled = _wait(served_emulator, pressed["result"], until=("SUCCESS",))
    zoom = next(b for b in upscaled["buttons"] if b["label"] == "Custom Zoom")
    waiting = _call(served_emulator, "POST", "/mj/submit/action",
                    {"customId": zoom["customId"], "taskId": upscaled["id"]})
    assert waiting["code"] == 21  # a modal window: the task waits for it
    assert _wait(served_emulator, waiting["result"], until=("MODAL",))["status"] == "MODAL"
    modal = _call(served_emulator, "POST", "/mj/submit/modal",
                  {"taskId": waiting["result"], "prompt": "a cosy cafe --zoom 2"})
    assert modal["code"] == 1
    assert _wait(served_emulator, waiting["result"], until=("SUCCESS",))["imageUrl"]
    change = _call(served_emulator, "POST", "/mj/submit/change",
                   {"taskId": board["id"], "action": "VARIATION", "index": 2})
    assert change["code"] == 1 and _wait(served_emulator, change["result"], until=("SUCCESS",))


def test_suno_calls_as_new_api_serves_them(served_emulator: str) -> None:
    lyrics = _call(served_emulator, "POST", "/suno/submit/lyrics", {"prompt": "a jingle"})
    assert lyrics["code"] == "success"
    music = _call(served_emulator, "POST", "/suno/submit/music",
                  {"gpt_description_prompt": "a jingle", "mv": "chirp-crow",
                   "negative_tags": "metal"})  # accepted, and dropped as new-api does
    assert music["code"] == "success"
    deadline = time.monotonic() + 30
    while True:
        fetched = _call(served_emulator, "GET", f"/suno/fetch/{music['data']}")
        if fetched["data"]["status"] == "SUCCESS":
            break
        assert time.monotonic() < deadline, fetched
        time.sleep(0.05)
    assert [clip["audio_url"] for clip in fetched["data"]["data"]]
