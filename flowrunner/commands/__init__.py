"""One module per `flow` subcommand. Each takes typed values and a stream, prints, and
returns an exit status or raises a FlowError; `cli.py` only parses options and calls it.

May import: the leaves, kit, run, call, store, net, catalog, media, recipe, emulator.
"""
