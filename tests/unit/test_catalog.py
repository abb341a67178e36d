from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

import flowrunner
from flowrunner.catalog.entries import extract, get_endpoint, load_catalog
from flowrunner.catalog.resources import iter_endpoint_files, read_json, schemas_root
from flowrunner.errors import UnknownEndpointError
from flowrunner.recipe.schema import check_params

REPO = Path(__file__).resolve().parents[2]


def test_schemas_load_from_the_installed_package() -> None:
    schema_file = Path(str(schemas_root().joinpath("recipe.schema.json")))
    installed = importlib.util.find_spec("flowrunner._schemas") is not None
    package_dir = Path(flowrunner.__file__).parent
    if installed:
        # a wheel install: the schemas ship inside the package
        assert schema_file == package_dir / "_schemas" / "recipe.schema.json"
    else:
        # a source checkout or editable install uses the top-level folder
        assert schema_file == REPO / "schemas" / "recipe.schema.json"
    assert schema_file.is_file()
    assert read_json("recipe.schema.json")["title"] == "flowrunner recipe"
    assert {provider for provider, _ in iter_endpoint_files()} >= {"recraft", "flux", "generic"}


@pytest.mark.slow
def test_every_catalog_entry_follows_the_catalog_format() -> None:
    meta = read_json("endpoint.schema.json")
    for _provider, entry in iter_endpoint_files():
        if entry.name.startswith("_"):
            continue
        jsonschema.validate(json.loads(entry.read_text()), meta)


def test_catalog_has_the_gateway_menu_and_edits() -> None:
    catalog = load_catalog()
    expected = {
        "recraft.generate_image": ("/recraft/v1/images/generations", "json"),
        "recraft.vectorize": ("/recraft/v1/images/vectorize", "multipart"),
        "recraft.remove_background": ("/recraft/v1/images/removeBackground", "multipart"),
        # the gateway's menu names (Clarity / Generative Upscale), as gateway clients call them
        "recraft.crisp_upscale": ("/recraft/v1/images/clarityUpscale", "multipart"),
        "recraft.creative_upscale": ("/recraft/v1/images/generativeUpscale", "multipart"),
        "recraft.create_style": ("/recraft/v1/styles", "multipart"),
        "recraft.image_to_image": ("/recraft/v1/images/imageToImage", "multipart"),
        "recraft.inpaint": ("/recraft/v1/images/inpaint", "multipart"),
        "recraft.replace_background": ("/recraft/v1/images/replaceBackground", "multipart"),
        "recraft.generate_background": ("/recraft/v1/images/generateBackground", "multipart"),
        "recraft.variate_image": ("/recraft/v1/images/variateImage", "multipart"),
        "recraft.erase_region": ("/recraft/v1/images/eraseRegion", "multipart"),
    }
    for endpoint_id, (path, body) in expected.items():
        endpoint = catalog[endpoint_id]
        assert (endpoint.path, endpoint.body, endpoint.method) == (path, body, "POST")
    assert catalog["recraft.generate_image"].output_names == ["credits", "url", "urls"]
    assert catalog["recraft.vectorize"].output_names == ["credits", "url"]
    assert catalog["recraft.create_style"].output_names == ["credits", "style_id"]
    assert catalog["recraft.create_style"].files["images"].multiple is True
    flux = catalog["flux.generate"]
    assert flux.task is not None and "Ready" in flux.task.success
    assert flux.task.poll_path == "/flux/v1/get_result?id={id}"
    # Recraft's own API and BFL's serve the same entries under their own routes and fields
    own = catalog["recraft.crisp_upscale"].for_kind("recraft")
    assert (own.path, own.files["image"].field) == ("/v1/images/crispUpscale", "image")
    assert catalog["recraft.vectorize"].files["image"].field == "file"
    bfl = flux.for_kind("bfl")
    assert (bfl.path, bfl.task.poll_path) == ("/v1/{model}", "/v1/get_result?id={id}")  # type: ignore[union-attr]


@pytest.mark.parametrize(("params", "ok"), [
    ({"prompt": "a fox"}, True),
    # the audit's case: icon is recraftv2-only, and the pinned default model is recraftv3
    ({"prompt": "a fox", "n": 6, "size": "16:9", "style": "icon"}, False),
    ({"prompt": "a fox", "n": 2, "size": "16:9", "style": "icon", "model": "recraftv2"}, True),
    ({"prompt": "a fox", "n": 3}, False),  # the gateway makes at most 2 (Recraft's API: 6)
    ({"prompt": "a fox", "model": "recraftv4", "style": "digital_illustration"}, False),
    ({"prompt": "a fox", "model": "recraftv4", "negative_prompt": "text"}, False),
    ({"prompt": "a fox", "model": "recraftv4", "size": "1280x832"}, True),
    ({"prompt": "a fox", "model": "recraftv4", "size": "1820x1024"}, False),
    ({"prompt": "a fox", "model": "recraftv3_vector", "size": "1024x1024"}, False),
    ({"prompt": "x" * 1001}, False),
    ({"prompt": "x" * 1001, "model": "recraftv4"}, True),
    ({"prompt": "a fox", "model": "recraftv4_styles"}, False),
    ({"prompt": "a fox", "model": "recraftv4_1_flash"}, True),
    ({"prompt": "a fox", "style": "Photorealism"}, True),
    ({"prompt": "a fox", "creativity": "eccentric", "style_match": "precise"}, True),
    ({"prompt": "a fox", "text_layout": [{"text": "hi", "bbox": [[0, 0], [1, 0], [1, 1],
                                                                  [0, 1]]}],
      "model": "recraftv4"}, False),
    ({"prompt": "a fox", "n": 0}, False),
    ({"prompt": "a fox", "n": 7}, False),
    ({"prompt": "a fox", "size": "1000x1000"}, False),
    ({"prompt": "a fox", "controls": {"colors": [{"rgb": [1, 2, 300]}]}}, False),
    ({"prompt": "a fox", "style": "icon", "style_id": "4515d324-f8ac-4397-aca9-5bd06bff3113"},
     False),
    ({}, False),
])
def test_generate_image_parameter_schema(params: dict, ok: bool) -> None:
    endpoint = get_endpoint("recraft.generate_image")
    problems = check_params(endpoint, endpoint.with_defaults(params))
    assert (not problems) is ok, problems


def test_recraft_takes_six_images_on_its_own_api_and_two_at_the_gateway() -> None:
    endpoint = get_endpoint("recraft.generate_image")
    own = endpoint.for_kind("recraft")
    assert check_params(own, own.with_defaults({"prompt": "a fox", "n": 6})) == []
    problems = check_params(endpoint, endpoint.with_defaults({"prompt": "a fox", "n": 6}))
    assert problems and "at most 2 images per call" in problems[0][1]


def test_a_per_model_rule_says_what_to_do() -> None:
    endpoint = get_endpoint("recraft.generate_image")
    problems = check_params(endpoint, endpoint.with_defaults(
        {"prompt": "a fox", "model": "recraftv4", "style": "digital_illustration"}))
    assert problems == [(("style",), "recraftv4 does not take a style",
                         "use model: recraftv3 (or recraftv2), or a style_id")]


@pytest.mark.parametrize(("params", "ok"), [
    ({"model": "flux-pro-1.1", "prompt": "p", "width": 1024, "height": 768}, True),
    ({"model": "flux-pro-1.1", "prompt": "p", "width": 2048}, False),
    ({"model": "flux-pro-1.1", "prompt": "p", "width": 1040}, False),
    ({"model": "flux-2-pro", "prompt": "p", "width": 2560, "height": 1440}, True),
    ({"model": "flux-2-pro", "prompt": "p", "safety_tolerance": 6}, False),
    ({"model": "flux-pro-1.1-ultra", "prompt": "p", "width": 1024}, False),
    ({"model": "flux-pro-1.1-ultra", "prompt": "p", "aspect_ratio": "21:9", "raw": True}, True),
    ({"model": "flux-pro-1.1", "prompt": "p", "aspect_ratio": "16:9"}, False),
    ({"model": "flux-2-klein-4b", "prompt": "p", "steps": 20, "guidance": 3}, True),
])
def test_flux_limits_per_model(params: dict, ok: bool) -> None:
    problems = check_params(get_endpoint("flux.generate"), params)
    assert (not problems) is ok, problems


def test_unknown_endpoint_suggests_the_nearest() -> None:
    with pytest.raises(UnknownEndpointError) as info:
        get_endpoint("recraft.remove_backgroud")
    assert info.value.hint == "did you mean recraft.remove_background?"


def test_path_language() -> None:
    doc = {"data": [{"url": "u1"}, {"b64_json": "b"}, {"url": "u3"}], "metadata": {"credits": 2}}
    assert extract(doc, "data[*].url") == ["u1", "u3"]
    assert extract(doc, "data[0].url") == "u1"
    assert extract(doc, "data[-1].url") == "u3"
    assert extract(doc, "metadata.credits|credits") == 2
    assert extract({"credits": 5}, "metadata.credits|credits") == 5
    assert extract(doc, "nothing.here") is None


def test_no_shipped_default_or_example_names_a_retired_model() -> None:
    """Issue 25: a default or an example that the provider no longer serves fails a paid
    run. Judged by the day the test runs, so a retirement date passing fails CI."""
    import datetime

    from flowrunner.catalog.entries import load_catalog

    today = datetime.date.today()
    for endpoint in load_catalog().values():
        param = endpoint.model_param
        if endpoint.models:  # the models are judged on a parameter the endpoint takes
            assert param in endpoint.params_schema.get("properties", {}), endpoint.id
        default = endpoint.defaults.get(param)
        if endpoint.models and default is not None:
            assert default in endpoint.models, f"{endpoint.id}: its default {default} is unjudged"
            assert endpoint.models[default].state(today) not in ("retired", "gone"), endpoint.id
        schema = endpoint.params_schema.get("properties", {}).get(param, {})
        for example in schema.get("examples", []):
            model = endpoint.models.get(example)
            assert model is None or model.state(today) != "retired", (endpoint.id, example)
        for model in endpoint.models.values():
            assert model.source.startswith(("verified:", "inferred:")), (endpoint.id, model)
            if model.successor is not None:
                assert model.successor in endpoint.models, (endpoint.id, model.successor)
                assert endpoint.models[model.successor].state(today) == "current"


def test_examples_use_no_model_that_is_retired_or_shutting_down() -> None:
    from pathlib import Path

    from flowrunner.catalog.entries import load_catalog
    from flowrunner.catalog.models import today
    from flowrunner.run.planning import load_plan

    # an endpoint whose every model shuts down (OpenAI's speech models: no successor
    # named) is warned about, and may be, until its day comes
    no_way_out = {e.id for e in load_catalog().values() if e.models and all(
        m.state(today()) != "current" for m in e.models.values())}
    for path in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")):
        plan = load_plan(path)  # a retired model would be an error here
        warned = [w.message for w in plan.warnings
                  if not any(f"{endpoint}'s default" in w.message for endpoint in no_way_out)]
        assert warned == [], path.name


def test_a_model_gone_from_the_list_is_a_warning_without_an_invented_date() -> None:
    """Issue 25 review: a model missing from the provider's list, with no announced end,
    is `gone` (a warning naming the day it was checked), never `retired` (a refusal); a
    model without a successor says how to choose instead of naming none."""
    import datetime

    from flowrunner.catalog.models import Model

    day = datetime.date(2026, 12, 3)
    gone = Model.from_dict("gen3a_turbo", {"gone": "2026-12-03", "successor": "gen4_turbo",
                                           "source": "inferred: not in the SDK's list"})
    assert gone.state(day - datetime.timedelta(days=1)) == "current"
    assert gone.state(day) == gone.state(datetime.date(2099, 1, 1)) == "gone"
    severity, message, hint = gone.problem(day)  # type: ignore[misc]
    assert severity == "warning" and "checked 2026-12-03" in message and \
        message.endswith("use gen4_turbo") and "not in the SDK's list" in str(hint)
    assert "unlisted since 2026-12-03 → gen4_turbo" in gone.describe(day)
    alone = Model.from_dict("tts-1", {"retired": "2027-01-06", "source": "verified: SDK"})
    severity, message, hint = alone.problem(datetime.date(2027, 1, 6))  # type: ignore[misc]
    assert severity == "error" and "use" not in message
    assert "no successor is known" in str(hint) and "catalog:" in str(hint)
    assert alone.problem(datetime.date(2026, 12, 3))[0] == "warning"  # type: ignore[index]


def test_a_model_default_applies_only_with_its_model() -> None:
    """`model_defaults`: Runway's gen4.5 gets a ratio and a duration when it is chosen;
    kling2.5_turbo_pro (no ratio) gets neither; a given value always wins."""
    from flowrunner.catalog.entries import load_catalog

    runway = load_catalog()["runway.image_to_video"]
    assert runway.with_defaults({"promptImage": "x"}) == {
        "promptImage": "x", "model": "gen4_turbo", "ratio": "1280:720"}
    assert runway.with_defaults({"model": "gen4.5", "duration": 8})["duration"] == 8
    assert runway.defaults_for({"model": "gen4.5"}) == {"ratio": "1280:720", "duration": 5}
    assert runway.defaults_for({"model": "kling2.5_turbo_pro"}) == {}


def test_model_defaults_are_checked_against_the_entry_itself(tmp_path) -> None:
    """A model's defaults are parameters like any: every built-in one passes its own entry's
    schema; in a recipe-local entry a wrong one is refused where it is written, and none
    may swap the model."""
    import json

    from flowrunner.catalog.entries import load_catalog
    from flowrunner.catalog.resources import read_json
    from flowrunner.recipe.schema import check_endpoint_data, model_default_problems
    from flowrunner.recipe.source import load_source

    for endpoint in load_catalog().values():
        assert model_default_problems(endpoint) == [], endpoint.id

    entry = read_json("endpoints", "runway", "image_to_video.json")
    entry["id"] = "team.runway"
    entry["model_defaults"] = {"gen4_turbo": {"ratio": 5, "model": "veo3.1", "bogus": 1}}
    path = tmp_path / "runway.json"
    path.write_text(json.dumps(entry, indent=2))
    source = load_source(path)
    found = [(i.location.line, i.message) for i in check_endpoint_data(source.data, source.map)]
    text = path.read_text().splitlines()
    assert len(found) == 3
    for line, message in found:
        assert "model_defaults.gen4_turbo." in message
        assert message.split(".")[2].split(":")[0] in text[line - 1]  # at the value written
