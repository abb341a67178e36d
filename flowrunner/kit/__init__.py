"""What a run leaves beside the recipe, and comparing runs: the lock file (`lockfile`) and
whether it is up to date from the repository alone (`lockcheck`), run stamps (`stamp`), the
gallery page (`gallery`) and serving it live for `flow watch` (`livegallery`), writing them
after a run (`sidecars`), parameter changes in words (`changes`), what changed against a
git base (`diffing`, `gitrev`) and the review page (`diffpage`).

May import: the leaves, run, store, net, catalog, media, recipe.
"""
