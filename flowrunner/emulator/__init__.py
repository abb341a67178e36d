"""The providers' stand-in (`flow emulator`, `flow run --mock`): one module per provider
family (`recraft`, `flux`, `ideogram`, `openai_images`, `midjourney`, `kling`, `suno`,
`minimax`, `runway`, `sora`, `unified_video`, `video_tasks`, `replicate`, `audio`), each with
its contract beside it under `contracts/` (the provider's published facts, with their
sources), its handlers and its route table (`ROUTES`). `server` tries the routes in order
(`routing`), after authentication and the faults (`faults` lists them, `fault_answers`
answers them); `exchange` is the plumbing every handler shares, `state` what the emulator
remembers, `contract` the loader and checks of the contracts; `images`, `video`, `sounds`
and `newapi` make placeholder files and ids. It models the providers, never flowrunner's
catalog, so a wrong catalog entry fails against it.

May import: the leaves, media.
"""
