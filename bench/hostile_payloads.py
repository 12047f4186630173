"""What the hostile payloads of issue 13 cost the server: wall time and peak memory growth.

    python bench/hostile_payloads.py [--root DIR] [--skip-slow]

Starts `python app.py` from `--root` (default: this checkout; pass an export of another commit
to measure "before") on a free port, then sends, over raw HTTP, each payload below and prints
how long the server took to answer and how much its resident memory grew at the peak (VmRSS
sampled every 5 ms). A normal classify is timed after each, to show the app still serves.

  - a 140 KB PNG declaring 144 megapixels, as a data: URL to /classify;
  - a 27 MB BMP as a data: URL to /classify;
  - a 200 MB JSON body to queue/join (declared Content-Length);
  - the largest image allowed: a 170 KB RGBA PNG of 6,000 x 6,600 (39.6 MP), uploaded, classified;
  - a 1.9 MB checkpoint declaring 20,000 blocks, uploaded, then given to every handler that
    takes a file (the activate handler); capped at 180 s (`--skip-slow` leaves it out).
Target: each refused in well under a second with under 100 MB of growth.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(HERE), str(HERE / "tests")]
from hostile import bmp_of_bytes, blocks_config, data_url, png_bomb, safetensors_with_config, small_png  # noqa: E402
from synthetic import free_port  # noqa: E402


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.start, self.peak, self.t0 = vm_rss_mb(self.pid), 0.0, time.perf_counter()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, vm_rss_mb(self.pid))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.grown = max(self.peak, vm_rss_mb(self.pid)) - self.start


def call(client: httpx.Client, fn_index: int, data: list, timeout: float) -> tuple[str, str]:
    """(outcome, message) of one queue/join + SSE call; outcome is ok / error / HTTP <code> / timeout."""
    session = uuid.uuid4().hex[:12]
    r = client.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session})
    if r.status_code != 200:
        return f"HTTP {r.status_code}", r.text[:80]
    event = r.json()["event_id"]
    try:
        with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session},
                           timeout=httpx.Timeout(timeout)) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("event_id") == event and msg.get("msg") == "process_completed":
                        out = msg.get("output") or {}
                        return ("ok" if msg.get("success") else "error"), str(out.get("error") or "")[:80]
    except httpx.ReadTimeout:
        return "timeout", f"no answer in {timeout:.0f} s"
    return "closed", ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(HERE), help="checkout whose app.py to run")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the 20,000-block checkpoint")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    port = free_port()
    runs = tempfile.mkdtemp(prefix="hostile-runs-")
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "CIFAR_S9_APP_RUNS": runs, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
           "GRADIO_TEMP_DIR": tempfile.mkdtemp(prefix="hostile-uploads-")}  # its own upload folder
    scratch = [runs, env["GRADIO_TEMP_DIR"]]
    server = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        for _ in range(240):
            try:
                if client.get("/config").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        config = client.get("/config").json()
        comps = {c["id"]: c["type"] for c in config["components"]}
        values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
        fns = config["dependencies"]
        classify = next(d for d in fns if d.get("api_name") == "classify")
        image_at = [comps[i] for i in classify["inputs"]].index("image")
        file_fns = [d for d in fns if "file" in [comps[i] for i in d["inputs"]]]

        def classify_data(image) -> list:
            data = [values[i] for i in classify["inputs"]]
            data[image_at] = image
            return data

        probe = client.post("/gradio_api/upload", files={"files": ("p.png", small_png())}).json()[0]
        probe_payload = {"path": probe, "meta": {"_type": "gradio.FileData"}, "orig_name": "p.png"}
        print(f"app from {root} (commit {subprocess.run(['git', '-C', str(root), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or 'export'}), "
              f"server pid {server.pid}, {vm_rss_mb(server.pid):.0f} MB resident at start")
        print(f"{'payload':44s} {'answer':10s} {'seconds':>8s} {'peak +MB':>9s} {'then classify s':>16s}  message")

        def report(name: str, attack) -> None:
            with Peak(server.pid) as p:
                outcome, message = attack()
            t0 = time.perf_counter()
            after, _ = call(client, classify["id"], classify_data(probe_payload), 120)
            after_s = time.perf_counter() - t0
            print(f"{name:44s} {outcome:10s} {p.seconds:8.2f} {p.grown:9.0f} {after_s:10.2f} ({after})  {message}",
                  flush=True)

        report("normal classify (reference)", lambda: call(client, classify["id"], classify_data(probe_payload), 60))
        bomb = {"url": data_url(png_bomb()), "meta": {"_type": "gradio.FileData"}, "orig_name": "bomb.png"}
        report(f"PNG bomb data: URL ({len(png_bomb()) // 1000} KB, 144 MP)",
               lambda: call(client, classify["id"], classify_data(bomb), 120))
        bmp = bmp_of_bytes()
        bmp_payload = {"url": data_url(bmp, "image/bmp"), "meta": {"_type": "gradio.FileData"}, "orig_name": "b.bmp"}
        report(f"BMP data: URL ({len(bmp) / 2**20:.0f} MB)", lambda: call(client, classify["id"], classify_data(bmp_payload), 120))

        def big_json():
            chunk = b"x" * 2**20

            def body():
                yield b'{"data": ["'
                for _ in range(200):
                    yield chunk
                yield b'"], "fn_index": 0, "session_hash": "big"}'
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/gradio_api/queue/join", content=body(), timeout=120,
                               headers={"content-type": "application/json",
                                        "content-length": str(11 + 200 * 2**20 + 41)})
                return f"HTTP {r.status_code}", r.text[:80]
            except httpx.TransportError as exc:
                return "closed", type(exc).__name__
        report("200 MB JSON body to queue/join", big_json)
        import io

        import numpy as np
        from PIL import Image
        big = io.BytesIO()
        Image.fromarray(np.full((6600, 6000, 4), (10, 20, 30, 128), np.uint8), "RGBA").save(big, "PNG")
        big_path = client.post("/gradio_api/upload", files={"files": ("big.png", big.getvalue())}).json()[0]
        big_payload = {"path": big_path, "meta": {"_type": "gradio.FileData"}, "orig_name": "big.png"}
        report(f"39.6 MP RGBA PNG upload ({len(big.getvalue()) // 1000} KB, allowed)",
               lambda: call(client, classify["id"], classify_data(big_payload), 120))
        if not args.skip_slow:
            ckpt = safetensors_with_config(blocks_config(20_000))
            up = client.post("/gradio_api/upload", files={"files": ("model.safetensors", ckpt)}).json()[0]
            for fn in file_fns:
                data = [{"path": up, "meta": {"_type": "gradio.FileData"}, "orig_name": "model.safetensors"}
                        if comps[i] == "file" else None for i in fn["inputs"]]
                report(f"20,000-block checkpoint ({len(ckpt) / 2**20:.1f} MB) to fn {fn['id']}",
                       lambda: call(client, fn["id"], data, 180))
    finally:
        server.terminate()
        server.wait(30)
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
