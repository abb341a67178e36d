"""Provider profiles, recipe-local catalog entries and the real wire: checked from the request
logs of emulators that model each provider (not our catalog)."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY_ENV, LOGO_CHAIN, recipe, sha256

from conftest import CANARY_KEY, Emulator, flow, flow_in_process

BFL_KEY = "bfl-canary-0c4d1e7a9b2f"
RECRAFT_KEY = "rc-canary-5e8f2a1b3c4d"


def _emulator(kind: str, key: str) -> Iterator[Emulator]:
    from flowrunner.emulator.server import make_server

    server = make_server("127.0.0.1", 0, api_key=key, kind=kind)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield Emulator(f"http://127.0.0.1:{server.server_address[1]}", server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def bfl() -> Iterator[Emulator]:
    yield from _emulator("bfl", BFL_KEY)


@pytest.fixture
def recraft_api() -> Iterator[Emulator]:
    yield from _emulator("recraft", RECRAFT_KEY)


@pytest.mark.slow
def test_a_bfl_profile_sends_x_key_to_bfls_own_routes(tmp_path: Path, emulator: Emulator,
                                                      bfl: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: flux.generate
    provider: bfl
    with: {model: flux-pro-1.1, prompt: "a fox at dawn", width: 1024, height: 768}
    save: hero.png
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo", size: 1024x1024}
    save: logo.png
""", extra=f"providers:\n  bfl: {{base_url: {bfl.base_url}, api_key_env: BFL_API_KEY, "
           "auth: {header: x-key}, kind: bfl}\n")
    env = {**KEY_ENV, "BFL_API_KEY": BFL_KEY}
    result = flow("run", path, env=env)
    assert result.code == 0, result
    calls = bfl.requests()
    assert [c["path"] for c in calls][0] == "/v1/flux-pro-1.1"
    assert all(c["x_key"] == BFL_KEY and c["authorization"] is None for c in calls)
    # BFL's polling URL names another host: flowrunner polls through the profile's own route
    assert {c["path"] for c in calls[1:]} == {"/v1/get_result"}
    assert calls[0]["json"] == {"prompt": "a fox at dawn", "width": 1024, "height": 768}
    # each provider's cost in its own unit, never added together
    assert "1 ElkAPI credits + 4 BFL credits spent" in result.out
    # the gateway saw only the Recraft call, with its own key
    assert [c["path"] for c in emulator.calls()] == ["/recraft/v1/images/generations"]
    assert (tmp_path / "assets" / "hero.png").read_bytes()[:4] == b"\x89PNG"
    lock = (tmp_path / "brand.lock").read_text()
    assert sha256(tmp_path / "assets" / "hero.png") in lock
    assert BFL_KEY not in result.both and BFL_KEY not in lock
    bfl.reset()
    emulator.reset()
    again = flow("run", path, env=env)
    assert again.code == 0 and bfl.requests() == [] and emulator.requests() == [], again


def test_a_missing_key_names_the_profile_that_needs_it(tmp_path: Path, emulator: Emulator,
                                                       bfl: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, """
  hero:
    uses: flux.generate
    provider: bfl
    with: {model: flux-pro-1.1, prompt: "a fox"}
""", extra=f"providers:\n  bfl: {{base_url: {bfl.base_url}, api_key_env: BFL_API_KEY, "
           "auth: {header: x-key}}\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 2
    assert "BFL_API_KEY is not set, and 1 instance(s) need a call through provider 'bfl'" \
        in result.err


def test_a_recipe_local_entry_adds_an_endpoint_on_recraft_itself(
        tmp_path: Path, emulator: Emulator, recraft_api: Emulator) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "vector.yaml").write_text("""\
id: acme.generate_vector
title: Generate vector (Recraft's /generations/vector)
method: POST
path: /v1/images/generations/vector
body: json
providers: [recraft]
defaults: {model: recraftv4_vector}
params:
  type: object
  additionalProperties: false
  required: [prompt]
  properties:
    prompt: {type: string}
    model: {type: string}
    size: {type: string}
response:
  artifacts: {items: "data[*]", url: url}
  credits: [credits, metadata.credits]
outputs: {url: "data[0].url"}
evidence:
  route: "verified: Recraft's OpenAPI spec, POST /v1/images/generations/vector"
""")
    path = recipe(tmp_path, emulator.base_url, """
  mark:
    uses: acme.generate_vector
    provider: recraft
    with: {prompt: "A fox mark", size: "1:1"}
    save: mark.svg
""", extra=f"catalog: [catalog]\nproviders:\n  recraft: {{base_url: {recraft_api.base_url}, "
           "api_key_env: RECRAFT_API_TOKEN, kind: recraft}\n")
    result = flow("run", path, env={**KEY_ENV, "RECRAFT_API_TOKEN": RECRAFT_KEY})
    assert result.code == 0, result
    [call] = recraft_api.calls()
    assert call["path"] == "/v1/images/generations/vector"
    assert call["authorization"] == f"Bearer {RECRAFT_KEY}"
    assert call["json"] == {"prompt": "A fox mark", "size": "1:1", "model": "recraftv4_vector"}
    assert (tmp_path / "assets" / "mark.svg").read_bytes().rstrip().endswith(b"</svg>")
    assert "(80 Recraft units," in result.out  # Recraft's own API reports in its units
    assert emulator.requests() == []
    listed = flow_in_process("endpoints", "--recipe", path)
    assert "acme.generate_vector" in listed.out and "[from catalog/vector.yaml]" in listed.out


@pytest.mark.parametrize(("override", "expected"), [
    # the spec's field name: the gateway route wants `file`
    ({"files": {"image": {"field": "image"}}}, "HTTP 422: unexpected file field 'image'"),
    # the new upstream route name, which no gateway serves
    ({"path": "/recraft/v1/images/crispUpscale"}, "HTTP 404"),
])
def test_a_wrong_catalog_entry_is_refused_by_the_emulator(tmp_path: Path, emulator: Emulator,
                                                         override: dict[str, Any],
                                                         expected: str) -> None:
    from flowrunner.catalog.entries import get_endpoint

    builtin = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "endpoints"
                          / "recraft" / "crisp_upscale.json").read_text())
    assert get_endpoint("recraft.crisp_upscale").path == builtin["path"]
    (tmp_path / "broken.json").write_text(json.dumps({**builtin, **override}))
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.split("  clean:")[0] + """
  big:
    uses: recraft.crisp_upscale
    with: {image: "{{ steps.logo.files[0] }}"}
""", extra="catalog: [broken.json]\n")
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 1, result
    assert expected in result.out, result


def test_raw_auth_sends_the_bare_key(tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.split("  clean:")[0],
                  extra="")
    text = path.read_text().replace("provider:\n", "provider:\n  auth: raw\n")
    path.write_text(text)
    result = flow("run", path, env=KEY_ENV)
    assert result.code == 0, result
    assert [c["authorization"] for c in emulator.calls()] == [CANARY_KEY]


def test_validation_knows_profiles_and_which_endpoints_they_serve(tmp_path: Path) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", """
  hero:
    uses: flux.generate
    provider: bfI
    with: {model: flux-pro-1.1, prompt: "a fox"}
  logo:
    uses: recraft.generate_image
    provider: bfl
    with: {prompt: "Logo"}
""", extra="providers:\n  bfl: {base_url: https://api.bfl.ai, api_key_env: BFL_API_KEY, "
           "auth: {header: x-key}}\n")
    result = flow_in_process("validate", path)
    assert result.code == 3
    assert ":14:15: error: steps.hero.provider: no provider profile 'bfI'" in result.err
    assert "hint: did you mean 'bfl'?" in result.err
    assert "steps.logo: recraft.generate_image is not served by provider 'bfl' (a bfl " \
           "provider)" in result.err


def test_the_pinned_model_shows_in_plan_and_lock_and_a_rule_stops_a_bad_pair(
        tmp_path: Path, emulator: Emulator) -> None:
    path = recipe(tmp_path, emulator.base_url, LOGO_CHAIN.split("  clean:")[0])
    planned = flow_in_process("plan", path)
    assert "      model: recraftv3" in planned.out
    assert planned.out.rstrip().endswith("0 cached, 1 to call, ~1 ElkAPI credits estimated")
    assert flow("run", path, env=KEY_ENV).code == 0
    assert "model: recraftv3" in (tmp_path / "brand.lock").read_text()
    bad = path.read_text().replace("size: 1024x1024", "size: 1024x1024\n      model: recraftv4")
    path.write_text(bad)
    result = flow_in_process("validate", path)
    assert result.code == 3
    assert "steps.logo.with.style: recraftv4 does not take a style" in result.err
    assert "hint: use model: recraftv3 (or recraftv2), or a style_id" in result.err


@pytest.mark.slow
def test_mock_starts_an_emulator_per_kind_of_provider(tmp_path: Path) -> None:
    path = recipe(tmp_path, "https://api.elkapi.com", """
  hero:
    uses: flux.generate
    provider: bfl
    with: {model: flux-2-pro, prompt: "a fox", width: 2560, height: 1440}
    save: hero.png
""", extra="providers:\n  bfl: {base_url: https://api.bfl.ai, api_key_env: BFL_API_KEY, "
           "auth: {header: x-key}}\n")
    result = flow("run", path, "--mock")
    assert result.code == 0, result
    assert (tmp_path / "assets" / "hero.png").read_bytes()[:4] == b"\x89PNG"
    assert "(0 saved" in result.out or "1 called" in result.out


def test_recraft_documented_curl_call_with_a_raw_key(served_emulator: str) -> None:
    # Recraft's docs: curl -H "Authorization: $RECRAFT_API_TOKEN" (no Bearer) -d '{...}'
    body = json.dumps({"prompt": "race car on a track", "style": "digital_illustration",
                       "model": "recraftv3"}).encode()
    request = urllib.request.Request(
        f"{served_emulator}/recraft/v1/images/generations", data=body, method="POST",
        headers={"Authorization": CANARY_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        assert json.loads(answer.read())["data"][0]["url"].startswith(served_emulator)


@pytest.mark.slow
def test_the_official_openai_sdk_works_as_recraft_documents(served_emulator: str) -> None:
    openai = pytest.importorskip("openai")
    from flowrunner.emulator.images import png

    client = openai.OpenAI(api_key=CANARY_KEY, base_url=f"{served_emulator}/recraft/v1")
    made = client.images.generate(prompt="race car on a track", model="recraftv3",
                                  size="1024x1024", style="digital_illustration")
    assert made.data and made.data[0].url
    picture = png(512, 512, "sdk")
    for route in ("removeBackground", "vectorize", "clarityUpscale", "generativeUpscale"):
        answer = client.post(path=f"/images/{route}", cast_to=object,
                             options={"headers": {"Content-Type": "multipart/form-data"}},
                             files={"file": ("in.png", io.BytesIO(picture), "image/png")})
        assert answer["image"]["url"], route
    style = client.post(path="/styles", cast_to=object, body={"style": "digital_illustration"},
                        options={"headers": {"Content-Type": "multipart/form-data"}},
                        files={"file": ("ref.png", io.BytesIO(picture), "image/png")})
    assert style["id"]


def test_recraft_endpoints_beyond_the_gateway_menu(tmp_path: Path, emulator: Emulator,
                                                   recraft_api: Emulator) -> None:
    path = recipe(tmp_path, recraft_api.base_url, """
  idea:
    uses: recraft.enhance_prompt
    with: {prompt: "a fox"}
  art:
    uses: recraft.generate_raster
    with: {prompt: "{{ steps.idea.outputs.prompt }}", size: 1024x1024}
    save: art.png
  wide:
    uses: recraft.outpaint
    with: {image: "{{ steps.art.files[0] }}", prompt: "a meadow", expand_left: 256}
    save: wide.png
""", extra="")
    text = path.read_text().replace("provider:\n", "provider:\n  kind: recraft\n")
    path.write_text(text)
    result = flow("run", path, env={"ELKAPI_API_KEY": RECRAFT_KEY})
    assert result.code == 0, result
    calls = recraft_api.calls()
    assert [c["path"] for c in calls] == ["/v1/prompts/enhance", "/v1/images/generations/raster",
                                          "/v1/images/outpaint"]
    assert calls[1]["json"]["prompt"].startswith("a fox, richly detailed")
    assert calls[1]["json"]["model"] == "recraftv4"
    assert calls[2]["fields"]["expand_left"] == "256"
    assert (tmp_path / "assets" / "wide.png").is_file()
