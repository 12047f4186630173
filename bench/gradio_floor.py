"""What Gradio itself costs a request: `bench/load.py`'s users against an app with the same two
endpoints (/classify: a filepath gr.Image to a gr.Label; /explain: to a 256x256 JPEG gr.Image), the
app's queue settings and launch options, and handlers that do no work. Its server CPU a request
is the floor under the app's; its p95 at 64 users is the best a Gradio queue gives that many
closed-loop users on this machine, whatever the handlers cost.

    python bench/gradio_floor.py                  # 64 users, 10 requests each, three rounds
    python bench/gradio_floor.py --users 16 --rounds 1

Last line: JSON with every round, the settings and the machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import load  # noqa: E402  (the same users and the same row)

SERVER = """
import sys
import numpy as np
import gradio as gr
sys.path.insert(0, {root!r})
import app
from cifar_s9.app import workload
workload.use_torch_threads(1, local=False)
CAM = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
with gr.Blocks() as demo:
    image = gr.Image(type="filepath", image_mode=None)
    label = gr.Label(num_top_classes=10)
    cam = gr.Image(format="jpeg", interactive=False)
    button = gr.Button()
    button.click(lambda im: {{"cat": 0.9, "dog": 0.1}}, [image], [label], api_name="classify")
    button.click(lambda im: CAM, [image], [cam], api_name="explain")
demo.queue(**app.QUEUE).launch(**{{**app.launch_options(), "server_name": "127.0.0.1",
                                   "server_port": {port}, "quiet": True}})
"""


def start_floor_server() -> tuple[subprocess.Popen, str]:
    port = load.free_port()
    return load.serve(SERVER.format(root=str(ROOT), port=port), port)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--requests", type=int, default=10, help="requests per user (classify/explain alternate)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    proc, url = start_floor_server()
    try:
        load.run_users_raw(url, 8, 3, proc.pid)  # first requests load lazily: keep them out
        rows = []
        for _ in range(args.rounds):
            row = load.run_users_raw(url, args.users, args.requests, proc.pid)
            rows.append(row)
            print(f"{row['users']:>5} users {row['ok']:>5} ok {row['failures']:>3} failed "
                  f"{row['throughput_rps']:>7.2f} req/s  p50 {row['p50_ms']:>7.1f} ms  p95 {row['p95_ms']:>7.1f} ms  "
                  f"server CPU {row['server_cpu_ms_per_request']:>5.1f} ms/req", flush=True)
    finally:
        load.stop_server(proc)
    result = {"bench": "gradio_floor", "rounds": rows, "requests_per_user": args.requests, **load.machine()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
