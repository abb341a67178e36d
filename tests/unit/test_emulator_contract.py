"""The emulator refuses what the providers refuse and accepts what they accept, from their
own contracts (the audit's probes), independently of flowrunner's catalog."""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from flowrunner.emulator.images import png
from flowrunner.emulator.server import make_server

KEY = "sk-contract-test-1"


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    yield from _serve("gateway")


@pytest.fixture(scope="module")
def recraft() -> Iterator[str]:
    yield from _serve("recraft")


@pytest.fixture(scope="module")
def bfl() -> Iterator[str]:
    yield from _serve("bfl")


def _serve(kind: str) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, api_key=KEY, kind=kind)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, *, json_body: Any = None, fields: dict[str, str] | None = None,
          files: list[tuple[str, bytes]] | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {KEY}", **(headers or {})}
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    else:
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (fields or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                         f"\r\n\r\n{value}\r\n".encode())
        for name, blob in files or []:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="f.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
                         + blob + b"\r\n")
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, body.decode()


IMAGE = png(512, 512, "contract")
GENERATE = "/recraft/v1/images/generations"


@pytest.mark.parametrize(("body", "status"), [
    ({"prompt": "a fox", "model": "recraftv3", "style": "digital_illustration"}, 200),
    # refused by Recraft although the old catalog let them through
    ({"prompt": "a fox", "model": "recraftv4", "style": "digital_illustration"}, 400),
    ({"prompt": "a fox", "style": "digital_illustration"}, 400),  # default model: recraftv4
    ({"prompt": "a fox", "model": "recraftv3", "style": "icon"}, 400),
    ({"prompt": "a fox", "model": "recraftv3_vector", "size": "1024x1024"}, 400),
    ({"prompt": "a fox", "model": "recraftv3", "size": "1280x832"}, 400),
    ({"prompt": "x" * 5000, "model": "recraftv3"}, 400),
    ({"prompt": "a fox", "model": "recraftv4_styles"}, 400),
    ({"prompt": "a fox", "model": "recraftv3", "style_id": str(uuid.uuid4())}, 404),
    ({"prompt": "a fox", "model": "recraftv3", "n": 7}, 400),
    ({"prompt": "a fox", "model": "recraftv3", "colour": "red"}, 400),  # unknown field
    # accepted by Recraft although the old catalog refused them
    ({"prompt": "a fox", "model": "recraftv3", "style": "Photorealism"}, 200),
    ({"prompt": "a fox", "model": "recraftv4_1_flash"}, 200),
    ({"prompt": "a fox", "model": "recraftv4", "creativity": "eccentric",
      "style_reference_urls": ["https://example.invalid/ref.png"]}, 200),
])
def test_recraft_generation_rules(gateway: str, body: dict[str, Any], status: int) -> None:
    code, answer = _post(gateway + GENERATE, json_body=body)
    assert code == status, answer


def test_gateway_auth_forms_and_error_body(gateway: str) -> None:
    body = {"prompt": "a fox", "model": "recraftv3"}
    for header in (f"Bearer {KEY}", f"bearer {KEY}", KEY, KEY.removeprefix("sk-")):
        assert _post(gateway + GENERATE, json_body=body,
                     headers={"Authorization": header})[0] == 200, header
    code, answer = _post(gateway + GENERATE, json_body=body,
                         headers={"Authorization": "Bearer wrong"})
    assert code == 401
    assert answer["error"]["type"] == "new_api_error" and answer["error"]["message"]


@pytest.mark.parametrize(("path", "field", "status"), [
    ("/recraft/v1/images/removeBackground", "file", 200),
    ("/recraft/v1/images/vectorize", "file", 200),
    ("/recraft/v1/images/clarityUpscale", "file", 200),
    ("/recraft/v1/images/generativeUpscale", "file", 200),
    # the spec's field name: the gateway routes want `file` (422 without it)
    ("/recraft/v1/images/removeBackground", "image", 422),
    # no gateway serves the new upstream names
    ("/recraft/v1/images/crispUpscale", "file", 404),
    ("/recraft/v1/images/creativeUpscale", "file", 404),
])
def test_gateway_upload_fields_and_routes(gateway: str, path: str, field: str,
                                          status: int) -> None:
    code, answer = _post(gateway + path, files=[(field, IMAGE)])
    assert code == status, answer


def test_multipart_values_are_checked_and_nested_fields_refused(gateway: str) -> None:
    inpaint = "/recraft/v1/images/imageToImage"
    ok = {"prompt": "a fox", "strength": "0.5", "model": "recraftv3"}
    assert _post(gateway + inpaint, fields=ok, files=[("image", IMAGE)])[0] == 200
    code, answer = _post(gateway + inpaint, fields={**ok, "strength": "5"},
                         files=[("image", IMAGE)])
    assert code == 400 and "strength" in answer["error"]["message"]
    code, answer = _post(gateway + inpaint, fields={**ok, "controls": '{"no_text": true}'},
                         files=[("image", IMAGE)])
    assert code == 400 and "only work in JSON" in answer["error"]["message"]
    # the JSON form carries nested fields and the image as a data URL
    data_url = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
    code, answer = _post(gateway + inpaint, json_body={
        "prompt": "a fox", "strength": 0.5, "model": "recraftv3", "image_url": data_url,
        "controls": {"no_text": True}})
    assert code == 200, answer


def test_input_images_are_held_to_recraft_limits(gateway: str) -> None:
    remove = gateway + "/recraft/v1/images/removeBackground"
    assert _post(remove, files=[("file", png(16, 16, "tiny"))])[0] == 400
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"></svg>'
    assert _post(remove, files=[("file", svg)])[0] == 200  # SVG is accepted here
    assert _post(gateway + "/recraft/v1/images/vectorize", files=[("file", svg)])[0] == 400
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40
    assert _post(remove, files=[("file", wav)])[0] == 400


def test_masks_must_be_grayscale_and_the_images_size(gateway: str) -> None:
    from PIL import Image

    def mask(size: tuple[int, int], mode: str = "L") -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, size, 255 if mode == "L" else (255, 255, 255)).save(buffer, "PNG")
        return buffer.getvalue()

    inpaint = gateway + "/recraft/v1/images/inpaint"
    fields = {"prompt": "a cup", "model": "recraftv3"}
    assert _post(inpaint, fields=fields, files=[("image", IMAGE),
                                                ("mask", mask((512, 512)))])[0] == 200
    assert _post(inpaint, fields=fields, files=[("image", IMAGE),
                                                ("mask", mask((256, 256)))])[0] == 400
    assert _post(inpaint, fields=fields, files=[("image", IMAGE),
                                                ("mask", mask((512, 512), "RGB"))])[0] == 400


def test_styles_take_up_to_ten_images_and_their_ids_are_known_afterwards(
        gateway: str) -> None:
    styles = gateway + "/recraft/v1/styles"
    code, made = _post(styles, fields={"style": "digital_illustration"},
                       files=[("file", IMAGE)] * 7)
    assert code == 200, made
    assert _post(styles, fields={"style": "digital_illustration"},
                 files=[("file", IMAGE)] * 11)[0] == 400
    code, answer = _post(gateway + GENERATE, json_body={"prompt": "a fox", "model": "recraftv3",
                                                        "style_id": made["id"]})
    assert code == 200, answer


def test_recraft_itself_takes_the_spec_names_and_answers_its_own_error_shape(
        recraft: str) -> None:
    assert _post(recraft + "/v1/images/crispUpscale", files=[("image", IMAGE)])[0] == 200
    assert _post(recraft + "/v1/images/removeBackground", files=[("file", IMAGE)])[0] == 200
    code, answer = _post(recraft + "/v1/images/generations",
                         json_body={"prompt": "a fox", "model": "recraftv4", "style": "icon"})
    assert code == 400 and set(answer) == {"code", "message"}


@pytest.mark.parametrize(("model", "body", "status"), [
    ("flux-pro-1.1", {"prompt": "p", "width": 1024, "height": 768}, 200),
    ("flux-pro-1.1", {"prompt": "p", "width": 2048}, 422),
    ("flux-pro-1.1", {"prompt": "p", "width": 1040}, 422),
    ("flux-2-pro", {"prompt": "p", "safety_tolerance": 6}, 422),
    ("flux-2-pro", {"prompt": "p", "width": 2560, "height": 1440}, 200),
    ("flux-2-pro", {"prompt": "p", "width": 2560, "height": 2048}, 422),  # over 4 MP
    ("flux-kontext-pro", {"prompt": "p", "width": 1024}, 422),
    ("flux-pro-1.1-ultra", {"prompt": "p", "aspect_ratio": "21:9", "raw": True}, 200),
    ("flux-2-klein-4b", {"prompt": "p", "steps": 20, "input_image_2": "https://x"}, 200),
    ("flux-pro-1.1", {"prompt": "p", "prompt_upsampling": True}, 200),
    ("flux-9000", {"prompt": "p"}, 404),
])
def test_bfl_model_limits(bfl: str, model: str, body: dict[str, Any], status: int) -> None:
    code, answer = _post(f"{bfl}/v1/{model}", json_body=body, headers={"x-key": KEY})
    assert code == status, answer


def test_bfl_wants_x_key_and_polls_on_another_host_name(bfl: str) -> None:
    code, _ = _post(f"{bfl}/v1/flux-pro-1.1", json_body={"prompt": "p"})
    assert code == 403  # a Bearer header is not BFL's auth
    code, answer = _post(f"{bfl}/v1/flux-pro-1.1", json_body={"prompt": "p"},
                         headers={"x-key": KEY})
    assert code == 200 and answer["polling_url"].startswith("http://localhost:")


def _covered(key: str, value: object, doc: dict) -> bool:
    """Whether a contract fact carries a source note of its own."""
    def has_source(item: object) -> bool:
        return isinstance(item, dict) and any(
            k == "source" or k.endswith("_source") for k in item)

    sources = doc.get("sources")
    return (has_source(value)
            or (isinstance(value, list) and bool(value) and all(map(has_source, value)))
            or (isinstance(value, dict) and any(isinstance(v, dict) for v in value.values())
                and all(has_source(v) for v in value.values() if isinstance(v, dict)))
            or (isinstance(sources, dict) and key in sources)
            or f"{key}_source" in doc)


def test_every_contract_fact_has_a_source_note_of_its_own() -> None:
    """Issue 25: the emulator states the providers' facts, each with where it was read; a
    fact without one (or one that cites flowrunner's own catalog) fails here."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "flowrunner" / "emulator" / "contracts"
    problems = []
    for path in sorted(folder.glob("*.json")):
        if path.name == "recraft-openapi.json":  # Recraft's own spec, vendored whole
            continue
        doc = json.loads(path.read_text())
        assert isinstance(doc.get("about"), str), path.name
        for key, value in doc.items():
            if key in ("about", "sources", "source") or key.endswith("_source"):
                continue
            if not _covered(key, value, doc):
                problems.append(f"{path.name}: {key}")
        if "schemas/endpoints" in path.read_text():
            problems.append(f"{path.name}: cites the catalog")
    assert problems == []


@pytest.mark.parametrize(("options", "status"), [
    ({"parameters": {}, "extend": False}, 200),
    ({"parameters": {}}, 400),  # the gateway docs: options.extend is required
    ({"extend": False}, 400),
    ({"parameters": {}, "extend": "no"}, 400),
    ({"parameters": {}, "extend": False, "aspectRatio": "16:9"}, 400),  # a number there
])
def test_pika_options_need_parameters_and_extend(gateway: str, options: dict[str, Any],
                                                 status: int) -> None:
    code, answer = _post(gateway + "/pika/generate",
                         json_body={"promptText": "a fox", "options": options})
    assert code == status, answer


@pytest.mark.parametrize(("body", "status"), [
    ({"model": "gen4.5", "promptImage": "x", "promptText": "p", "ratio": "1280:720",
      "duration": 5}, 200),
    ({"model": "gen4_turbo", "promptImage": "x", "ratio": "1280:720", "duration": 7}, 200),
    ({"model": "gen4_turbo", "promptImage": "x", "ratio": "1280:720", "duration": "5"}, 400),
    ({"model": "gen4_turbo", "promptImage": "x", "ratio": "1280:720", "duration": "auto"},
     400),
    ({"model": "seedance2", "promptImage": "x", "duration": "auto"}, 200),
    ({"model": "kling_4", "promptImage": "x", "ratio": "auto_720p"}, 200),
    ({"model": "kling_4", "promptImage": "x", "ratio": "1280:720"}, 400),
    ({"model": "klingO3_4k", "promptImage": "x", "ratio": "3840:2160"}, 200),
    ({"model": "hailuo3", "promptImage": "x"}, 400),  # needs a promptText
    ({"model": "veo3", "promptImage": "x", "ratio": "1280:720"}, 400),  # gone
    ({"model": "gen5_imaginary", "promptImage": "x"}, 400),
])
def test_runway_models_as_its_sdk_describes_them(gateway: str, body: dict[str, Any],
                                                 status: int) -> None:
    code, answer = _post(gateway + "/runwayml/v1/image_to_video", json_body=body,
                         headers={"X-Runway-Version": "2024-11-06"})
    assert code == status, answer


def test_the_videos_route_refuses_sora_models_since_the_shutdown(gateway: str) -> None:
    refused = _post(gateway + "/v1/videos", fields={"prompt": "a fox", "model": "sora-2"})
    assert refused[0] == 400 and "shut down on September 24, 2026" in json.dumps(refused[1])
    default = _post(gateway + "/v1/videos", fields={"prompt": "a fox"})  # sora-2 by default
    assert default[0] == 400
    other = _post(gateway + "/v1/videos", fields={"prompt": "a fox", "model": "wan-2.6"})
    assert other[0] == 200, other
