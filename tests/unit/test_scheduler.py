"""The scheduler driven through its client seam: ordering, skip propagation, budgets and
paid submits, with a fake client (no sockets, microseconds). Everything that touches HTTP
itself is tested against the emulator in tests/acceptance/."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from flowrunner.emulator.images import png
from flowrunner.errors import StepFailed, TransportError
from flowrunner.net.http import ApiRequest, ApiResponse
from flowrunner.net.providers import Route
from flowrunner.run.budget import Budget
from flowrunner.run.planning import load_plan
from flowrunner.run.results import RunResult, StepResult
from flowrunner.run.scheduler import Delivery, Means, Scheduler, Work
from flowrunner.store.cache import Cache

RECIPE = """\
version: 1
name: seam
vars: {brand: Acme}
steps:
  logo:
    uses: recraft.generate_image
    with: {prompt: "Logo for {{ vars.brand }}", size: 1024x1024}
    save: logo.png
  clean:
    uses: recraft.remove_background
    with: {image: "{{ steps.logo.files[0] }}"}
    save: clean.png
  banner:
    uses: recraft.generate_image
    with: {prompt: "Banner for {{ vars.brand }}", size: 1024x1024}
    save: banner.png
"""

Answer = Callable[[str, ApiRequest], "ApiResponse | Exception"]


def _image_answer(step_id: str, request: ApiRequest) -> ApiResponse:
    url = f"http://fake.test/files/{step_id}.png"
    if request.url.endswith("removeBackground"):
        return ApiResponse(200, {"image": {"url": url}})
    return ApiResponse(200, {"data": [{"url": url}], "credits": 1})


class FakeClient:
    """The Client protocol over a function: (step id, request) → answer or exception."""

    def __init__(self, answer: Answer = _image_answer) -> None:
        self.answer = answer
        self.calls: list[str] = []
        self.finished: list[str] = []
        self.lock = threading.Lock()

        self.redact: Callable[[str], str] = lambda text: text

    def call(self, request: ApiRequest, *, retries: int, deadline: float,
             step_id: str) -> ApiResponse:
        with self.lock:
            self.calls.append(step_id)
        outcome = self.answer(step_id, request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @contextlib.contextmanager
    def stream(self, url: str, *, timeout: float, provider: str | None = None
               ) -> Iterator[tuple[int, dict[str, str], Iterator[bytes]]]:
        with self.lock:
            self.finished.append(url.rsplit("/", 1)[-1].removesuffix(".png"))
        yield 200, {"Content-Type": "image/png"}, iter([png(32, 32, url)])

    def close(self) -> None:
        pass

    def pause(self, seconds: float, step_id: str) -> None:
        time.sleep(seconds)


class Recorder:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.finished: list[StepResult] = []

    def run_started(self, recipe: str, instances: int, concurrency: int) -> None: ...
    def step_started(self, instance_id: str) -> None: ...

    def step_finished(self, result: StepResult) -> None:
        self.finished.append(result)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def flush(self) -> None: ...

    def run_finished(self, result: RunResult) -> None: ...


def _run(tmp_path: Path, client: FakeClient, *, budget: Budget | None = None,
         text: str = RECIPE) -> dict[str, StepResult]:
    path = tmp_path / "seam.yaml"
    path.write_text(text)
    plan = load_plan(path)
    routes = {"default": Route("http://fake.test", "fake")}
    scheduler = Scheduler(
        Work(plan),
        Means(Cache(tmp_path / "cache"), client=lambda: client, routes=routes, concurrency=2,
              budget=budget or Budget(None)),
        Delivery(tmp_path / "assets", Recorder()))
    result = RunResult(recipe="seam.yaml")
    scheduler.run(result)
    return {r.instance_id: r for r in result.results}


def test_an_instance_starts_after_what_it_needs_and_independent_ones_run(
        tmp_path: Path) -> None:
    client = FakeClient()
    results = _run(tmp_path, client)
    assert {k: r.status for k, r in results.items()} == \
        {"logo": "ok", "clean": "ok", "banner": "ok"}
    # clean uploads the logo's file: it is called only after the logo's file was stored
    assert client.finished.index("logo") < client.calls.index("clean")
    assert (tmp_path / "assets" / "clean.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failure_skips_its_dependents_and_spares_the_rest(tmp_path: Path) -> None:
    def answer(step_id: str, request: ApiRequest) -> ApiResponse | Exception:
        if step_id == "logo":
            return StepFailed("logo: HTTP 400", status=400)
        return _image_answer(step_id, request)

    client = FakeClient(answer)
    results = _run(tmp_path, client)
    assert results["logo"].status == "failed"
    assert results["clean"].status == "skipped"
    assert results["clean"].reason == "needs logo, which failed"
    assert results["banner"].status == "ok"
    assert "clean" not in client.calls
    assert not (tmp_path / "assets" / "clean.png").exists()


def test_a_call_over_the_budget_is_not_made(tmp_path: Path) -> None:
    client = FakeClient()
    # two 1-credit images and a 0.25-credit cut-out against 1.5: one image must wait
    results = _run(tmp_path, client, budget=Budget(1.5, unit="ElkAPI credits"))
    refused = [r for r in results.values() if r.status == "failed"]
    assert len(refused) == 1 and refused[0].endpoint == "recraft.generate_image"
    assert "not called" in refused[0].error.message  # type: ignore[union-attr]
    assert refused[0].instance_id not in client.calls
    assert sum(r.credits for r in results.values() if r.status == "ok") <= 1.5


FLUX = """\
version: 1
name: task
steps:
  hero:
    uses: flux.generate
    with: {model: flux-pro-1.1, prompt: "a fox", width: 1024, height: 768}
    save: hero.png
"""


def test_a_submit_that_may_have_been_billed_is_journaled_and_not_sent_again(
        tmp_path: Path) -> None:
    submits: list[str] = []

    def answer(step_id: str, request: ApiRequest) -> ApiResponse | Exception:
        if request.submit:
            submits.append(step_id)
            return ApiResponse(200, {"id": "task-1", "polling_url": "http://elsewhere/x"})
        return TransportError("hero: connection reset while polling", maybe_sent=True)

    results = _run(tmp_path, FakeClient(answer), text=FLUX)
    assert results["hero"].status == "failed"
    journal = Cache(tmp_path / "cache").read_task(next(iter(
        p.stem for p in (tmp_path / "cache" / "tasks").glob("*.json"))))
    assert journal is not None and journal.id == "task-1"

    def poll_ok(step_id: str, request: ApiRequest) -> ApiResponse | Exception:
        if request.submit:
            submits.append(step_id)
            return ApiResponse(200, {"id": "task-2"})
        assert "task-1" in request.url  # the journaled task is polled, through the gateway
        return ApiResponse(200, {"id": "task-1", "status": "Ready",
                                 "result": {"sample": "http://fake.test/files/hero.png"}})

    results = _run(tmp_path, FakeClient(poll_ok), text=FLUX)
    assert results["hero"].status == "ok" and results["hero"].resumed
    assert submits == ["hero"]  # the second run resumed instead of paying again


