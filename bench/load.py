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
import app
from cifar_s9.app import workload
workload.use_torch_threads({threads}, local=False)  # as `python app.py` does
app.configure(weights={weights!r})
app.demo.queue(**app.QUEUE).launch(**{{**app.launch_options(), "server_name": "127.0.0.1",
                                      "server_port": {port}, "quiet": True}})
"""


def app_threads() -> int | None:
    sys.path.insert(0, str(ROOT))
    from cifar_s9.app import workload

    return workload.torch_threads(None, local=False)


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
    return serve(code, port, {**os.environ, "CIFAR_S9_APP_RUNS": runs_dir})


def serve(code: str, port: int, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Run `code` (a server listening on `port`) in a subprocess; (process, url) once the port
    takes connections, so its RSS and CPU are measured alone."""
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


def cpu_s(pid: int) -> float:
    """User + system CPU seconds process `pid` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_users(url: str, n_users: int, n_requests: int, server_pid: int | None = None) -> dict:
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
    server0, client0 = cpu_s(server_pid) if server_pid else 0.0, time.process_time()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    # where the two cores went: the server, and these clients (which share the machine with it)
    server_cpu = cpu_s(server_pid) - server0 if server_pid else float("nan")
    client_cpu = time.process_time() - client0
    for c in clients:
        c.close()
    return _row(n_users, n_requests, latencies, failures, wall, server_cpu, client_cpu)


async def _raw_request(http, fns: dict, api: str, image: Path, session: str) -> None:
    """One request as gradio_client makes it: upload the picture, join the queue, read this
    session's event stream to the result, and download a picture result."""
    import json as jsonlib

    with image.open("rb") as f:
        upload = await http.post("/gradio_api/upload", files={"files": (image.name, f.read(), "image/jpeg")})
    upload.raise_for_status()
    picture = {"path": upload.json()[0], "orig_name": image.name, "meta": {"_type": "gradio.FileData"}}
    fn, n_inputs = fns[api]
    data = [picture] + [None] * (n_inputs - 1)  # None: each setting's default (the session state too)
    joined = await http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session})
    joined.raise_for_status()
    event = joined.json()["event_id"]
    async with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            msg = jsonlib.loads(line[5:])
            if msg.get("event_id") != event or msg.get("msg") not in ("process_completed", "unexpected_error"):
                continue
            if not msg.get("success"):
                raise RuntimeError(str(msg.get("output", msg))[:160])
            out = msg["output"]["data"][0]
            if isinstance(out, dict) and out.get("url"):
                (await http.get(out["url"])).raise_for_status()
            return
    raise RuntimeError("the event stream ended without a result")


def run_users_raw(url: str, n_users: int, n_requests: int, server_pid: int | None = None) -> dict:
    """`run_users` with light clients: the same HTTP requests from asyncio tasks, so the users'
    own CPU (140 ms a request with gradio_client threads, three times the server's) does not
    take the two cores from the server they measure. Real visitors bring their own machines."""
    import asyncio
    import uuid

    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    config = httpx.get(f"{url}config", timeout=60).json()
    fns = {"/" + d["api_name"]: (d["id"], len(d["inputs"])) for d in config["dependencies"] if d.get("api_name")}

    async def user(u: int, start: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600, headers=user_address(u)) as http:
            session = uuid.uuid4().hex[:12]
            await start.wait()
            for r in range(n_requests):
                api = "/classify" if r % 2 == 0 else "/explain"
                t = time.perf_counter()
                try:
                    await _raw_request(http, fns, api, Path(EXAMPLES[(u + r) % len(EXAMPLES)]), session)
                    latencies.append(time.perf_counter() - t)
                except Exception as exc:  # counted, and the run goes on
                    failures.append(f"{api}: {type(exc).__name__}: {exc}"[:200])

    async def main() -> tuple[float, float, float]:
        start = asyncio.Event()
        tasks = [asyncio.create_task(user(u, start)) for u in range(n_users)]
        await asyncio.sleep(0.5)  # every client built before the clock starts
        t0, server0, client0 = time.perf_counter(), cpu_s(server_pid) if server_pid else 0.0, time.process_time()
        start.set()
        await asyncio.gather(*tasks)
        return (time.perf_counter() - t0, cpu_s(server_pid) - server0 if server_pid else float("nan"),
                time.process_time() - client0)

    wall, server_cpu, client_cpu = asyncio.run(main())
    return _row(n_users, n_requests, latencies, failures, wall, server_cpu, client_cpu)


def _row(n_users, n_requests, latencies, failures, wall, server_cpu, client_cpu) -> dict:
    return {"users": n_users, "requests": n_users * n_requests, "ok": len(latencies),
            "failures": len(failures), "failure_examples": failures[:3], "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2),
            "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
            "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
            "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, len(latencies)), 1),
            "client_cpu_ms_per_request": round(1000 * client_cpu / max(1, len(latencies)), 1)}


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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the server (default: the app's, 1 for a shared app)")
    parser.add_argument("--client", choices=("raw", "gradio"), default="raw",
                        help="raw: the same requests from light asyncio clients (default); gradio: one "
                             "gradio_client per user in threads (heavier than the server on a 2-core machine)")
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
            print(f"{'users':>5} {'requests':>8} {'ok':>5} {'fail':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
                  f"{'server CPU ms/req':>17} {'client CPU ms/req':>17}")
            rows = []
            for n in users:
                runner = run_users_raw if args.client == "raw" else run_users
                row = runner(url, n, args.requests, proc.pid)
                rows.append(row)
                print(f"{n:>5} {row['requests']:>8} {row['ok']:>5} {row['failures']:>5} "
                      f"{row['throughput_rps']:>7.2f} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
                      f"{row['server_cpu_ms_per_request']:>17.1f} {row['client_cpu_ms_per_request']:>17.1f}", flush=True)
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
              "server_threads": args.threads or app_threads(), "client": args.client, "weights": args.weights or "app default",
              **machine()}
    print(json.dumps(result))
    return result


def machine() -> dict:
    """Where and when a bench ran, for its JSON line."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


if __name__ == "__main__":
    main()
