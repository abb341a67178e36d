"""A recipe as written: YAML with positions, and the YAML flowrunner writes (`source`), the
recipe model and its checks (`spec`), JSON Schema checks of recipes, entries and
parameters (`schema`), the schema editors read (`editorschema`), Jinja templates
(`templating`), and the step graph (`graph`).

May import: the leaves, catalog, net.
"""
