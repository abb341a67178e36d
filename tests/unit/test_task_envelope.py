"""A submit answered 200 may still refuse the task inside its envelope (Midjourney's codes,
Suno's `code`): the catalog says which values accept it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from flowrunner.call.calls import _check_accepted
from flowrunner.catalog.entries import _task_doc, _task_spec
from flowrunner.errors import StepFailed

TASK = {"id": "result", "status": "status", "success": ["SUCCESS"], "failure": ["FAILURE"],
        "accept": {"path": "code", "values": [1, 22], "error": "description"}}


def _call(task: dict) -> Any:
    """Just the parts of a prepared call the envelope check reads."""
    return cast(Any, SimpleNamespace(endpoint=SimpleNamespace(task=_task_spec(task)),
                                     instance=SimpleNamespace(id="board")))


@pytest.mark.parametrize("answer", [{"code": 1, "result": "t"}, {"code": 22, "result": "t"},
                                    {"code": "1", "result": "t"}])
def test_the_accepting_codes_pass(answer: dict) -> None:
    _check_accepted(_call(TASK), answer)


@pytest.mark.parametrize(("answer", "says"), [
    ({"code": 24, "description": "banned prompt: gore"}, "code 24: banned prompt: gore"),
    ({"code": 21, "description": "waiting for a modal"}, "code 21"),
    ({"result": "t"}, "code None"),
])
def test_any_other_code_is_a_refusal_with_the_providers_reason(answer: dict,
                                                                says: str) -> None:
    with pytest.raises(StepFailed, match=says) as caught:
        _check_accepted(_call(TASK), answer)
    assert caught.value.retryable is False


def test_an_envelope_survives_a_round_trip_through_the_catalog_format() -> None:
    spec = _task_spec(TASK)
    assert _task_spec(_task_doc(spec)) == spec
    plain = _task_spec({k: v for k, v in TASK.items() if k != "accept"})
    assert plain.accept_path is None and "accept" not in _task_doc(plain)
