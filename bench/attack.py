"""Ordinary visitors under the combined attack of issue 25 (point 6), beside the same visitors
without it: classify p50/p95, completed requests and the server's peak resident memory.

    python bench/attack.py [--users 32] [--seconds 40] [--every 10]

Starts `python app.py` from this checkout on a free port (its own upload and runs folders),
then runs two phases of `--seconds` each, over raw HTTP (queue/join + the SSE stream, as a
browser does): `--users` ordinary visitors classifying the bundled examples one after another,
first alone, then with an attacker who every `--every` seconds sends four scan-repeated
progressive JPEGs and four 40 MP 16-bit PNGs as data: URLs to /classify, each from a fresh
session, and tries to start a 30-minute experiment. Targets on the 2-core machine (issue 25):
under attack, ordinary classify p95 <= 3 s and server RSS <= 2.5 GB.
Last line: JSON with every number.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(HERE), str(HERE / "tests"), str(HERE / "bench")]
from hostile import data_url  # noqa: E402
from hostile_payloads import Peak, call, vm_rss_mb  # noqa: E402
from load import cpu_s, percentile, stop_server, user_address  # noqa: E402
from synthetic import free_port  # noqa: E402

EXAMPLES = sorted((HERE / "assets" / "examples").glob("*.jpg"))


def jpeg_bomb(size: int = 256, repeats: int = 500) -> bytes:
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                       np.full((size, size), 90.0, np.float32)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", progressive=True, quality=90)
    jpeg = buf.getvalue()
    start, end = jpeg.rindex(b"\xff\xda"), jpeg.rindex(b"\xff\xd9")
    return jpeg[:end] + jpeg[start:end] * repeats + jpeg[end:]


def png16_bomb(side: int = 6300) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(side, dtype=np.uint16)[None, :] * 10).repeat(side, 0)).save(buf, "PNG")
    return buf.getvalue()


def start_app(port: int) -> tuple[subprocess.Popen, list[str]]:
    scratch = [tempfile.mkdtemp(prefix="attack-runs-"), tempfile.mkdtemp(prefix="attack-uploads-")]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "CIFAR_S9_APP_RUNS": scratch[0], "GRADIO_TEMP_DIR": scratch[1], "PYTHONPATH": str(HERE)}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=HERE, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, scratch


class App:
    """The launched app's config: how to build a /classify call and an experiment start."""

    def __init__(self, client: httpx.Client):
        config = client.get("/config").json()
        self.types = {c["id"]: c["type"] for c in config["components"]}
        self.values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
        self.fns = config["dependencies"]

    def fn(self, api_name: str) -> tuple[int, dict]:
        index, dep = next((i, d) for i, d in enumerate(self.fns) if d.get("api_name") == api_name)
        return dep.get("id", index), dep

    def data(self, dep: dict, image) -> list:
        data = [self.values[i] for i in dep["inputs"]]
        if image is not None:
            data[[self.types[i] for i in dep["inputs"]].index("image")] = image
        return data


def ordinary(url: str, app: App, payloads: list, until: float, out: list, lock, u: int = 0) -> None:
    fn, dep = app.fn("classify")
    with httpx.Client(base_url=url, timeout=120, headers=user_address(u)) as client:
        i = 0
        while time.monotonic() < until:
            t = time.perf_counter()
            outcome, _ = call(client, fn, app.data(dep, payloads[i % len(payloads)]), timeout=120)
            with lock:
                out.append((outcome, time.perf_counter() - t))
            i += 1


def attacker(url: str, app: App, bombs: list[str], until: float, every: float, sent: list) -> None:
    fn, dep = app.fn("classify")
    start = app.fn("experiment_start") if any(d.get("api_name") == "experiment_start" for d in app.fns) else None

    def fire(data, fn_index):
        try:
            with httpx.Client(base_url=url, timeout=120) as c:
                sent.append(call(c, fn_index, data, timeout=120)[0])
        except httpx.HTTPError as exc:  # the server went away at the end of the bench
            sent.append(type(exc).__name__)

    while time.monotonic() < until:
        wave = [threading.Thread(target=fire, args=(app.data(dep, {"url": b, "path": None,
                                                                   "meta": {"_type": "gradio.FileData"}}), fn))
                for b in bombs]
        if start is not None:
            data = app.data(start[1], None)
            wave.append(threading.Thread(target=fire, args=(data, start[0])))
        for t in wave:
            t.start()
        time.sleep(every)  # a bench pacing its attack, not a test waiting for an event


def phase(url: str, app: App, pid: int, users: int, seconds: float, bombs: list[str] | None,
          every: float) -> dict:
    uploads = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for p in EXAMPLES[:8]:
            path = c.post("/gradio_api/upload", files={"files": (p.name, p.read_bytes())}).json()[0]
            uploads.append({"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": p.name})
    results, sent, lock = [], [], threading.Lock()
    until = time.monotonic() + seconds
    server0, client0 = cpu_s(pid), time.process_time()
    with Peak(pid) as rss:
        workers = [threading.Thread(target=ordinary, args=(url, app, uploads, until, results, lock, u))
                   for u in range(users)]
        if bombs:
            workers.append(threading.Thread(target=attacker, args=(url, app, bombs, until, every, sent),
                                            daemon=True))
        for w in workers:
            w.start()
        for w in workers[:users]:
            w.join()
    server_cpu, client_cpu = cpu_s(pid) - server0, time.process_time() - client0
    ok = [s for outcome, s in results if outcome == "ok"]
    return {"server_cpu_s": round(server_cpu, 1), "client_cpu_s": round(client_cpu, 1),"attack": bool(bombs), "users": users, "seconds": seconds, "completed": len(ok),
            "failed": len(results) - len(ok), "p50_s": round(percentile(ok, 0.5), 2),
            "p95_s": round(percentile(ok, 0.95), 2), "peak_rss_mb": round(rss.start + rss.grown),
            "attack_requests": len(sent), "attack_outcomes": {o: sent.count(o) for o in set(sent)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between attack waves")
    args = parser.parse_args()
    bombs = [data_url(jpeg_bomb(), "image/jpeg")] * 4 + [data_url(png16_bomb())] * 4
    port = free_port()
    server, scratch = start_app(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            deadline = time.monotonic() + 240
            while True:
                try:
                    if c.get("/config").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the app did not start")
                time.sleep(0.5)
            app = App(c)
        print(f"server pid {server.pid}, {vm_rss_mb(server.pid):.0f} MB at start; "
              f"{args.users} ordinary users, {args.seconds:g} s per phase")
        rows = [phase(url, app, server.pid, args.users, args.seconds, None, args.every),
                phase(url, app, server.pid, args.users, args.seconds, bombs, args.every)]
        for r in rows:
            print(f"{'under attack' if r['attack'] else 'no attack':13s} completed {r['completed']:5d} "
                  f"failed {r['failed']:3d}  p50 {r['p50_s']:6.2f} s  p95 {r['p95_s']:6.2f} s  "
                  f"peak RSS {r['peak_rss_mb']:6.0f} MB  CPU s server {r['server_cpu_s']} "
                  f"clients {r['client_cpu_s']}  attack requests {r['attack_requests']} "
                  f"{r['attack_outcomes']}")
    finally:
        stop_server(server)
        for d in scratch:
            subprocess.run(["rm", "-rf", d], check=False)
    print(json.dumps({"bench": "attack", "phases": rows, "machine": platform.machine(),
                      "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}))


if __name__ == "__main__":
    main()
