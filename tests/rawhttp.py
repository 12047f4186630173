"""Speaking to a launched app as a browser does, over plain HTTP: `queue/join` with a chosen
`session_hash`, then that session's SSE stream until the event's last message. Every handler is
reachable this way, listed on the API page or not."""
from __future__ import annotations

import json

import httpx
from waiting import HANG_S

FINAL = ("process_completed", "unexpected_error")


def fn_indices(http: httpx.Client) -> dict[str, int]:
    """Each named endpoint's fn_index, from the app's /config."""
    config = http.get("/config").json()
    return {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}


def join_and_wait(http: httpx.Client, fn_index: int, data: list, session: str,
                  event_data: dict | None = None) -> dict:
    """The event's final message; a refused join comes back as {"msg": "refused", ...}."""
    r = http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                  "event_data": event_data, "trigger_id": None})
    if r.status_code != 200:
        return {"msg": "refused", "success": False, "status": r.status_code, "output": {"error": r.text}}
    event_id = r.json().get("event_id")
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session},
                     timeout=HANG_S) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("event_id") in (None, event_id) and msg.get("msg") in FINAL:
                return msg
    raise AssertionError(f"the stream ended without an answer to fn_index {fn_index}")
