"""One step instance's call, in the order it happens: its template context (`context`),
its input files (`inputs`), the prepared call and its cache key (`preparation`), the HTTP
request (`request`), polling a task (`polling`), reading the answer (`answers`), the files
it names into the cache (`downloads`), steps run here with Pillow (`local_steps`), and the
whole call (`calls`).

May import: the leaves, store, net, catalog, media, recipe.
"""
