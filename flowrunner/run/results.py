"""What happened in a run: StepResult per instance and the RunResult summary. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import FlowError
from ..records import ArtifactRecord

Status = Literal["ok", "cached", "failed", "skipped", "planned"]


@dataclass(slots=True)
class StepResult:
    """The outcome of one step instance."""

    instance_id: str
    step_id: str
    endpoint: str
    status: Status
    key: str | None = None
    error: FlowError | None = None
    reason: str | None = None
    credits: float = 0.0
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    saved: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    resumed: bool = False
    notes: list[str] = field(default_factory=list)
    response: Any = None  # kept in memory for later templates; never reported
    location: str | None = None  # the step's FILE:LINE:COL, for annotations
    unit: str = "credits"  # what its provider counts credits in (ElkAPI credits, …)
    credits_estimated: bool = False  # the answer named no cost: the catalog's price

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"instance": self.instance_id, "step": self.step_id,
                                "endpoint": self.endpoint, "status": self.status,
                                "credits": self.credits, "unit": self.unit,
                                "duration": round(self.duration, 3)}
        if self.credits_estimated:
            data["credits_estimated"] = True
        if self.key:
            data["key"] = self.key
        if self.saved:
            data["saved"] = self.saved
        if self.error is not None:
            data["error"] = self.error.message
            data["hint"] = self.error.hint
        if self.reason:
            data["reason"] = self.reason
        if self.resumed:
            data["resumed_task"] = True
        return data


@dataclass(slots=True)
class RunResult:
    """Every instance's outcome plus the totals the summary shows."""

    recipe: str
    results: list[StepResult] = field(default_factory=list)
    elapsed: float = 0.0
    lock_path: str | None = None
    output_dir: str | None = None
    interrupted: bool = False
    stopped: int = 0  # calls in flight when the run was interrupted
    mock: bool = False  # the emulator answered: its credits are emulated, not spent
    dry_run: bool = False
    gallery: str | None = None
    unit: str = "credits"  # the default provider's unit (the budget's)
    remote: dict[str, Any] | None = None  # what the shared cache did (`--remote-cache`)
    remote_line: str | None = None  # the same, in words

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def credits_spent(self) -> float:
        return sum(r.credits for r in self.results if r.status == "ok")

    @property
    def credits_saved(self) -> float:
        return sum(r.credits for r in self.results if r.status == "cached")

    def by_unit(self, status: Status) -> dict[str, float]:
        """Credits of the instances with ``status``, per unit (one per kind of provider)."""
        found: dict[str, float] = {}
        for item in self.results:
            if item.status == status and (item.credits or item.unit == self.unit):
                found[item.unit] = found.get(item.unit, 0.0) + item.credits
        return found or {self.unit: 0.0}

    @property
    def spent_word(self) -> str:
        """`spent`, or `emulated` for a --mock run (nothing was paid)."""
        return "emulated" if self.mock else "spent"

    def amount(self, status: Status) -> str:
        """`5 ElkAPI credits`, or `5 ElkAPI credits + 4 BFL credits` when units mix; `~53
        ElkAPI credits` when some answer named no cost (see `estimated_note`)."""
        text = " + ".join(f"{value:g} {unit}" for unit, value in self.by_unit(status).items())
        return f"~{text}" if self.estimated(status) else text

    def estimated_note(self, status: Status) -> str:
        """`, estimated` after an amount that holds the catalog's prices."""
        return ", estimated" if self.estimated(status) else ""

    def estimated(self, status: Status) -> bool:
        """Whether some of these instances' credits are the catalog's price, not the
        provider's word."""
        return any(r.credits_estimated for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and \
            not any(r.status == "skipped" and not _benign(r.reason) for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {"event": "run_finished", "recipe": self.recipe, "ok": self.ok,
                "instances": len(self.results), "called": self.count("ok"),
                "cached": self.count("cached"), "failed": self.count("failed"),
                "skipped": self.count("skipped"), "planned": self.count("planned"),
                "credits_spent": self.credits_spent, "credits_saved": self.credits_saved,
                "unit": self.unit, "spent_by_unit": self.by_unit("ok"),
                "credits_estimated": self.estimated("ok"),
                "elapsed": round(self.elapsed, 3), "lock": self.lock_path,
                "output_dir": self.output_dir, "interrupted": self.interrupted,
                "failures": [r.to_json() for r in self.failed],
                **({"remote": self.remote} if self.remote is not None else {})}


SHARD_REASON = "another shard makes it"


def _benign(reason: str | None) -> bool:
    """Whether a skip is what the recipe or the command asked for (not a failure)."""
    return reason == "condition is false" or bool(reason and reason.startswith(SHARD_REASON))
