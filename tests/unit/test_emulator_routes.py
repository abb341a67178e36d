"""The emulator's route table: each request reaches its family's handler, under the right
kind of provider, recorded with the operation tests and users read in its request log."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import flowrunner.emulator as emulator_package
from flowrunner.emulator import server
from flowrunner.emulator.routing import find


@pytest.mark.parametrize(("kind", "method", "path", "query", "operation"), [
    ("gateway", "POST", "/flux/v1/flux-pro-1.1", "", "flux.submit"),
    ("bfl", "POST", "/v1/flux-pro-1.1", "", "flux.submit"),
    ("bfl", "GET", "/v1/get_result", "id=1", "flux.get_result"),
    ("gateway", "POST", "/v1/images/generations", "", "openai.images.generations"),
    ("recraft", "POST", "/v1/images/generations", "", "recraft.generations"),
    ("gateway", "POST", "/recraft/v1/images/vectorize", "", "recraft.vectorize"),
    ("gateway", "POST", "/fast/mj/submit/imagine", "", "midjourney.imagine"),
    ("gateway", "GET", "/mj/task/17/fetch", "", "midjourney.fetch"),
    ("gateway", "POST", "/kling/v1/images/generations", "", "kling.images"),
    ("gateway", "GET", "/kling/v1/videos/text2video/abc", "", "kling.text2video.get"),
    ("gateway", "POST", "/suno/submit/music", "", "suno.submit.music"),
    ("gateway", "GET", "/v1/video/query", "id=veo3:1", "veo.poll"),
    ("gateway", "POST", "/luma/generations", "", "luma.submit"),
    ("gateway", "GET", "/replicate/v1/predictions/p1", "", "replicate.get"),
    ("gateway", "GET", "/replicate/v1/models/a/b/versions/0f1e", "", "replicate.version"),
    ("gateway", "POST", "/v1/video/generations", "", "video.generate"),
    ("gateway", "POST", "/v1/audio/speech", "", "audio.speech"),
])
def test_a_request_reaches_its_familys_handler(kind: str, method: str, path: str, query: str,
                                               operation: str) -> None:
    found = find(server.ROUTES, kind, method, path, query)
    assert found is not None, path
    rule, parts = found
    assert rule.operation.format(**parts) == operation


@pytest.mark.parametrize(("kind", "method", "path"), [
    ("gateway", "GET", "/flux/v1/flux-pro-1.1"),  # a submit is a POST
    ("bfl", "POST", "/kling/v1/images/generations"),  # BFL serves Flux only
    ("recraft", "POST", "/recraft/v1/images/generations"),  # Recraft's own API has no prefix
    ("gateway", "POST", "/kling/v1/images/generations/abc"),  # a poll is a GET
    ("gateway", "GET", "/nothing/here"),
])
def test_a_request_no_family_serves_has_no_route(kind: str, method: str, path: str) -> None:
    assert find(server.ROUTES, kind, method, path, "") is None


def test_every_familys_routes_and_handlers_are_served() -> None:
    """A new family module's table and handlers must be wired into the server."""
    for info in pkgutil.iter_modules(emulator_package.__path__):
        module = importlib.import_module(f"flowrunner.emulator.{info.name}")
        for rule in getattr(module, "ROUTES", ()):
            assert rule in server.ROUTES, (info.name, rule.operation)
        for name, value in vars(module).items():
            if name.endswith("Routes") and isinstance(value, type) and \
                    value.__module__ == module.__name__:
                assert issubclass(server.Handler, value), name


def test_every_api_fault_has_an_answer_and_no_two_families_share_a_handler_name() -> None:
    from flowrunner.emulator.fault_answers import ANSWERS
    from flowrunner.emulator.faults import API_FAULTS

    assert set(ANSWERS) == set(API_FAULTS)
    seen: dict[str, str] = {}
    for family in server.Handler.__mro__[1:]:
        if family.__name__.endswith("Routes"):
            for name in vars(family):
                if callable(vars(family)[name]) and not name.startswith("__"):
                    assert name not in seen, (name, family.__name__, seen.get(name))
                    seen[name] = family.__name__
