"""The providers' stand-in (`flow emulator`, `flow run --mock`): one module per provider
family, each with its contract beside it under `contracts/` (the provider's published
facts, with their sources), served by `server`. It models the providers, never flowrunner's
catalog, so a wrong catalog entry fails against it.

May import: the leaves, media.
"""
