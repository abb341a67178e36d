"""The endpoint catalog, as data: one entry per endpoint (`entries`: `Endpoint`, loading
the built-in and recipe-local entries, the path language into answers), the models an
entry knows with their lifecycle (`models`), and the shipped schemas and entry files
(`resources`).

May import: the leaves.
"""
