"""The emulator's faults on demand: the one list the code, `flow emulator --help`,
`flow run --mock --help` and the README use. Leaf: imports nothing (the CLI reads it
for its help text without starting anything)."""

from __future__ import annotations

# what each does to the next matching request(s)
FAULTS = {
    "429": "answer 429 Too Many Requests with Retry-After",
    "500": "answer 500", "502": "answer 502", "503": "answer 503", "504": "answer 504",
    "524": "answer 524 (a gateway timeout)",
    "bad-json": "answer 200 with a body that is not JSON",
    "echo-auth": "answer 400 repeating the request's headers (a leaky proxy)",
    "redirect": "answer 307 to another address",
    "slow-json": "drip the answer a byte at a time",
    "huge-json": "answer with a very large body",
    "reset": "read the request, then reset the connection without an answer",
    "truncate": "cut a download short",
    "slow-body": "drip a download",
    "no-artifact": "answer without the file",
    "file-url": "answer with a file: URL for the artifact",
    "fail-task": "end the next task in Error",
    "moderate-task": "end the next task moderated (Flux: Request Moderated; Suno: a "
                     "sensitive word)",
    "stuck-task": "keep the next task Pending",
    "reshaped": "answer the next Kling or unified video task in the gateway family's "
                "documented form ({task_id, status, url})",
    "remix": "answer the next Midjourney button as an account in remix mode would: its "
             "task waits in MODAL for /mj/submit/modal",
    "busy-poll": "answer the next MiniMax query with a rate-limit refusal in base_resp "
                 "(1002) and no status, as a passthrough gateway relays it",
    "kling-native": "answer the next Kling task in Kling's own form, as a passthrough "
                    "gateway would ({code: 0, data: {task_status, task_result}})",
}
STATUS_FAULTS = frozenset({"429", "500", "502", "503", "504", "524"})
API_FAULTS = STATUS_FAULTS | {"bad-json", "echo-auth", "redirect", "slow-json", "huge-json",
                              "reset"}
FAULT_KINDS = frozenset(FAULTS)
FAULT_HELP = ", ".join(FAULTS)
