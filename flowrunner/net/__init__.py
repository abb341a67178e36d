"""Talking to providers: the HTTP client (`http`: retries, deadlines, the key kept out of
every message), who is called with which key (`providers`), the environment's proxies and
CA bundles (`proxies`), request pacing (`throttle`), the tasks a provider runs for us at
once (`slots`) and the one thread that enforces every read's deadline (`watchdog`).

May import: the leaves.
"""
