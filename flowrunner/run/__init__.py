"""A run: recipe → plan (`planning`), what the cache already has (`survey`), the bounded
pool that runs the plan (`scheduler`), the credit budget (`budget`), outcomes (`results`),
what the user sees while it runs (`reporting`), crash reports (`crashlog`) and the run's
options and cache-root rule (`options`).

May import: the leaves, call, store, net, catalog, media, recipe.
"""
