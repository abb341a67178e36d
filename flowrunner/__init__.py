"""flowrunner: declarative workflows for generative-media APIs.

Recipes are YAML files whose steps call endpoints (Recraft through the ElkAPI gateway first)
with Jinja-templated parameters; `flow` validates, plans, runs, caches and locks them.

Where things live (imports only point down this list; tests/unit/test_layers.py checks it):

- `errors` the exception hierarchy · `_json` canonical JSON · `workers` the run's daemon
  worker threads · `providers` provider identity and API key · `records` checks of records
  read back from stores (digests, sizes, relative paths, task journals, claims) ·
  `cancellation` the run's one Ctrl-C signal, which ends every wait · `proxies` the
  environment's proxies and CA bundles · `models` models with a lifecycle (current, gone,
  deprecated, retired) · `watchdog` one deadline thread per run ·
  `throttle` request pacing
- `cache_key` the cache key · `limits` size limits · `_resources` the shipped schemas ·
  `source` YAML with positions · `yaml_text` the YAML flowrunner writes ·
  `templating` Jinja · `results` run outcomes · `budget` credit budget · `imaging` Pillow ·
  `crashlog` crash reports · `options` `RunOptions` and the cache-root rule · `gitrev`
  files at a git revision · `diffpage` the review page · `changes` parameter changes in words ·
  `objectstore` an S3 bucket or shared folder (the only user of boto3) · `media` what
  a file is (image, video, audio) and whether it is whole
- `cache` the content-addressed cache · `catalog` endpoints · `reporting` reporters ·
  `http` the HTTP client
- `schema` JSON Schema checks · `stamp` run stamps · `lockfile` the `<recipe>.lock` file ·
  `gallery` the gallery page · `downloads` artifacts into the cache · `editorschema` the
  schema editors read (every endpoint's parameters) · `remote` the cache shared through a
  store (read-through, write-through, claims, signed entries)
- `spec` the recipe model · `graph` the step graph
- `context` → `inputs` → `preparation` → `request`, `polling`, `answers`, `local_steps` →
  `calls`: one step instance's call
- `planning` recipe → Plan · `survey` what the cache already has · `diffing` what changed
  against a git base
- `scheduler` the bounded pool · `sidecars` what a finished run writes
- `commands/` one module per subcommand · `cli` the command line
- `emulator/` the providers' stand-in (imports nothing of the run, nor the catalog)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
