"""Load test of the app: N concurrent gradio_client users, then server memory over many explains.

Launches `app.py` as a subprocess on a free local port (so its RSS is measured alone), then for each
N in --users: N threads, each with its own gradio_client.Client, each doing --requests calls that
alternate /classify and /explain over the bundled example images. Reports per N: throughput
(successful requests / wall second), p50 / p95 latency of single requests, failures. Then RSS of the
server process before and after --explain-calls /explain calls (4 client threads), and the growth.

    python bench/load.py                                   # users 1,4,16; 20 requests; 1000 explains
    python bench/load.py --users 1,2 --requests 3 --explain-calls 20   # a quick smoke run

Last line: JSON with every number, the settings and the machine. The server uses the same queue
settings and launch options as `python app.py` (app.QUEUE, app.launch_options: its HTTP limits); the weights are --weights or the app's default (an
untrained fallback when absent: speed, not accuracy, is measured).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(p) for p in (ROOT / "assets" / "examples").glob("*.jpg"))

SERVER = """
import sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
import app
app.configure(weights={weights!r})
app.demo.queue(**app.QUEUE).launch(**{{**app.launch_options(), "server_name": "127.0.0.1",
                                      "server_port": {port}, "quiet": True}})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(weights: str | None, threads: int, runs_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = SERVER.format(root=str(ROOT), threads=threads, weights=weights, port=port)
    env = {**os.environ, "CIFAR_S9_APP_RUNS": runs_dir}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")


def stop_server(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if the server has not gone within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def user_address(u: int) -> dict:
    """X-Forwarded-For of user `u`: the app's per-address queue cap is for one client, not a class."""
    return {"X-Forwarded-For": f"10.{u // 65536 % 256}.{u // 256 % 256}.{u % 256 + 1}"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def run_users(url: str, n_users: int, n_requests: int) -> dict:
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    # each user behind its own address (as the Space's proxy reports them); connected before the clock
    clients = [Client(url, verbose=False, headers=user_address(u)) for u in range(n_users)]
    barrier = threading.Barrier(n_users + 1)

    def user(u: int) -> None:
        barrier.wait()
        for r in range(n_requests):
            api = "/classify" if r % 2 == 0 else "/explain"
            image = handle_file(EXAMPLES[(u + r) % len(EXAMPLES)])
            t = time.perf_counter()
            try:
                clients[u].predict(image, api_name=api)
                with lock:
                    latencies.append(time.perf_counter() - t)
            except Exception as exc:  # counted, and the run goes on
                with lock:
                    failures.append(f"{api}: {type(exc).__name__}: {exc}"[:200])

    threads = [threading.Thread(target=user, args=(u,)) for u in range(n_users)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    for c in clients:
        c.close()
    return {"users": n_users, "requests": n_users * n_requests, "ok": len(latencies),
            "failures": len(failures), "failure_examples": failures[:3], "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2),
            "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
            "p95_ms": round(1000 * percentile(latencies, 0.95), 1)}


def explain_memory(url: str, pid: int, calls: int, threads: int = 4) -> dict:
    from gradio_client import Client, handle_file

    before = rss_mb(pid)
    counter, failures, lock = iter(range(calls)), [0], threading.Lock()

    def worker() -> None:
        client = Client(url, verbose=False)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            try:
                client.predict(handle_file(EXAMPLES[i % len(EXAMPLES)]), api_name="/explain")
            except Exception:
                with lock:
                    failures[0] += 1
        client.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    after = rss_mb(pid)
    return {"explain_calls": calls, "failures": failures[0], "wall_s": round(time.perf_counter() - start, 1),
            "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
            "rss_growth_mb": round(after - before, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1,4,16", help="comma-separated concurrent user counts")
    parser.add_argument("--requests", type=int, default=20, help="requests per user (classify/explain alternate)")
    parser.add_argument("--explain-calls", type=int, default=1000, help="explain calls for the RSS check (0: skip)")
    parser.add_argument("--weights", default=None, help="checkpoint to serve (default: the app's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the server")
    args = parser.parse_args(argv)
    users = [int(u) for u in args.users.split(",") if u.strip()]

    with tempfile.TemporaryDirectory() as runs_dir:
        proc, url = start_server(args.weights, args.threads, runs_dir)
        try:
            from gradio_client import Client, handle_file
            warm = Client(url, verbose=False)  # first requests load lazily; keep them out of the numbers
            warm.predict(handle_file(EXAMPLES[0]), api_name="/classify")
            warm.predict(handle_file(EXAMPLES[0]), api_name="/explain")
            warm.close()
            print(f"{'users':>5} {'requests':>8} {'ok':>5} {'fail':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}")
            rows = []
            for n in users:
                row = run_users(url, n, args.requests)
                rows.append(row)
                print(f"{n:>5} {row['requests']:>8} {row['ok']:>5} {row['failures']:>5} "
                      f"{row['throughput_rps']:>7.2f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}", flush=True)
                for example in row["failure_examples"]:
                    print(f"      failure: {example}")
            memory = None
            if args.explain_calls > 0:
                memory = explain_memory(url, proc.pid, args.explain_calls)
                print(f"RSS {memory['rss_before_mb']:.1f} MB -> {memory['rss_after_mb']:.1f} MB after "
                      f"{args.explain_calls} explain calls: growth {memory['rss_growth_mb']:+.1f} MB "
                      f"({memory['failures']} failures, {memory['wall_s']} s)")
        finally:
            stop_server(proc)
    result = {"bench": "load", "users": rows, "memory": memory, "requests_per_user": args.requests,
              "server_threads": args.threads, "weights": args.weights or "app default",
              "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
