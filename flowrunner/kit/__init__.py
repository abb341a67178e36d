"""What a run leaves beside the recipe, and comparing runs: the lock file (`lockfile`), run
stamps (`stamp`), the gallery page (`gallery`), writing them after a run (`sidecars`),
parameter changes in words (`changes`), what changed against a git base (`diffing`,
`gitrev`) and the review page (`diffpage`).

May import: the leaves, run, store, net, catalog, media, recipe.
"""
