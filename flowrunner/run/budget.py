"""The credit budget of a run (`--max-credits`, `budget:`): calls reserve their estimated
cost before they start and settle it after; a call that would pass the limit is refused."""

from __future__ import annotations

import threading

from ..errors import BudgetExceeded


class Budget:
    """Thread-safe bookkeeping of credits spent and reserved against an optional limit."""

    def __init__(self, limit: float | None, *, unit: str = "credits") -> None:
        self.limit = limit
        self.unit = unit  # the default provider's; calls counted in another unit are not held
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, instance_id: str, estimate: float) -> None:
        """Hold ``estimate`` credits for a call, or refuse it.

        Raises:
            BudgetExceeded: spent + reserved + estimate would pass the limit.
        """
        with self._lock:
            if self.limit is not None and self.spent + self.reserved + estimate > self.limit:
                available = max(0.0, self.limit - self.spent - self.reserved)
                raise BudgetExceeded(
                    f"{instance_id}: not called: it would cost ~{estimate:g} {self.unit} and "
                    f"the budget has {available:g} {self.unit} available ({self.limit:g} "
                    f"− {self.spent:g} spent − {self.reserved:g} held by running calls)",
                    hint="raise --max-credits or the recipe's `budget:`; finished steps are "
                         "cached, so a re-run pays only for the rest")
            self.reserved += estimate

    def settle(self, estimate: float, actual: float) -> None:
        """Release a reservation and book what the call really cost."""
        with self._lock:
            self.reserved = max(0.0, self.reserved - estimate)
            self.spent += actual


def steps_within(costs: dict[str, float], needs: dict[str, set[str]],
                 limit: float) -> list[str]:
    """Steps (in the given order, each with its uncached dependencies) whose estimated
    calls fit in ``limit`` together: what `--only` could run within the budget.

    ``costs`` maps each step with work to do to its estimate, in plan order; ``needs``
    maps a step to the steps it depends on.
    """
    chosen: list[str] = []
    total = 0.0
    for step, cost in costs.items():
        missing = [d for d in needs.get(step, set()) if d in costs and d not in chosen]
        if missing or total + cost > limit:
            continue
        chosen.append(step)
        total += cost
    return chosen
