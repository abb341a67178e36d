"""A recipe as written: YAML with positions (`source`), the recipe model and its checks
(`spec`), JSON Schema checks of recipes, entries and parameters (`schema`), the schema
editors read (`editorschema`), Jinja templates (`templating`), the step graph (`graph`),
and the YAML flowrunner writes (`yaml_text`: lock files, eight times faster than PyYAML at
50,000 instances, checked byte for byte against it).

May import: the leaves, catalog, net.
"""
