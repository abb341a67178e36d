"""The template context of one step instance, and rendering its fields at run time.

What templates see (DESIGN.md §2): `vars`, `steps.<id>` (outputs, files, response) of the
steps it depends on, and `matrix` inside a matrix step. No environment, no clock.
"""

from __future__ import annotations

from typing import Any

from ..errors import Location, RenderFailed, TemplateProblem
from ..recipe.graph import Instance
from ..recipe.spec import Recipe
from ..recipe.templating import render_value, truthy
from ..records import CacheEntry
from ..store.cache import Cache


def step_view(entry: CacheEntry, cache: Cache) -> dict[str, Any]:
    """What later templates see of a finished instance: outputs, files, response."""
    return {
        "outputs": entry.get("outputs", {}),
        "files": [cache.object_file(a["sha256"]) for a in entry.get("artifacts", [])
                  if a.get("role") != "poster"],
        "response": entry.get("response", {}),
    }


def field_location(recipe: Recipe, instance: Instance, path: tuple[str | int, ...]) -> Location:
    """Where a field of the instance's step is written in the recipe."""
    return recipe.source_map.at(("steps", instance.step_id, *path))


def render_context(recipe: Recipe, instance: Instance, views: dict[str, Any]) -> dict[str, Any]:
    """The names an instance's templates may read."""
    context: dict[str, Any] = {"vars": recipe.vars, "steps": views}
    if instance.step.matrix:
        context["matrix"] = instance.matrix
    return context


def render_field(recipe: Recipe, instance: Instance, name: str, value: Any,
                 context: dict[str, Any]) -> Any:
    """Render one step field.

    Raises:
        RenderFailed: a template problem, located at the field.
    """
    try:
        return render_value(value, context)
    except TemplateProblem as exc:
        path = (name, *exc.path)
        where = field_location(recipe, instance, path)
        label = ".".join(str(p) for p in path)
        raise RenderFailed(f"{where}: {instance.id}.{label}: {exc.message}",
                           hint="check the names the template reads; `flow validate` "
                                "shows what is known before running") from None


def condition_holds(recipe: Recipe, instance: Instance, context: dict[str, Any]) -> bool:
    """Whether the instance's `if:` is true (a missing `if:` is)."""
    condition = instance.step.condition
    if condition is True or condition is None:
        return True
    return truthy(render_field(recipe, instance, "if", condition, context))
