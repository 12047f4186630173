"""What Gradio's per-event analytics summary costs, by the length of the event history it keeps.

After every finished event Gradio's queue summarises its last GRADIO_ANALYTICS_MAX_EVENTS
(10,000) events with pandas for the /monitoring page; `cifar_s9.app.gradio_fixes` turns that
off (the page is closed). This prints milliseconds a summary for histories of several lengths,
with Gradio's own method and with the installed one.

    python bench/analytics.py            # histories 100, 1000, 10000; 5 summaries each
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def history(n: int) -> list[dict]:
    names = ["classify", "explain", "view", "inside"]
    return [{"time": float(i), "status": "success", "process_time": 0.01 + i % 7 / 100,
             "function": names[i % 4], "session_hash": f"s{i % 64}"} for i in range(n)]


def ms_per_summary(method, records: list[dict], repeats: int) -> float:
    from gradio.queueing import Queue

    start = time.perf_counter()
    for _ in range(repeats):
        queue = SimpleNamespace(events_recorded=len(records), event_count_at_last_cache=0,
                                ANAYLTICS_CACHE_FREQUENCY=1, events_recorded_per_fn={},
                                cached_event_analytics_summary={"functions": {}}, _get_df=Queue._get_df)
        method(queue, records)
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="100,1000,10000", help="history lengths")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from gradio.queueing import Queue

    gradios = Queue.compute_analytics_summary
    from cifar_s9.app import gradio_fixes

    gradio_fixes.no_event_summaries()
    ours = Queue.compute_analytics_summary
    rows = []
    for n in (int(v) for v in args.events.split(",")):
        records = history(n)
        row = {"events": n, "gradio_ms": round(ms_per_summary(gradios, records, args.repeats), 2),
               "installed_ms": round(ms_per_summary(ours, records, args.repeats), 4)}
        print(f"{n:>6} events: Gradio's summary {row['gradio_ms']:7.2f} ms, installed {row['installed_ms']:.4f} ms")
        rows.append(row)
    print(json.dumps({"rows": rows, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
