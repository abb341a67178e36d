"""flowrunner: declarative workflows for generative-media APIs.

Recipes are YAML files whose steps call endpoints (Recraft through the ElkAPI gateway first)
with Jinja-templated parameters; `flow` validates, plans, runs, caches and locks them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
