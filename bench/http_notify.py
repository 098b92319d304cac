#!/usr/bin/env python3
"""The peers' way of telling a server about new weights: an HTTP POST with `requests` to a local server, as the
atropos and vLLM bridges do. Measures POST -> handler latency, like notify-latency measures publish -> wake:

    python3 bench/http_notify.py [--iterations N]      prints CSV rows: path,iterations,p50_us,p99_us,p999_us,mean_us

The server is FastAPI on uvicorn (Debian: python3-fastapi, python3-uvicorn) where they are installed, else
werkzeug's (GPU hosts have that). Each iteration sleeps 50-250 us, takes t0 and calls requests.post with t0 in
the JSON body; the handler takes t1 on entry. The client waits for the response before the next iteration.
"""
import argparse
import importlib.util
import random
import socket
import subprocess
import sys
import time

SERVER = r"""
import json, sys, time
latencies = []
def record(body):
    latencies.append(time.monotonic_ns() - json.loads(body)["t0"])
port = int(sys.argv[1])
try:
    from fastapi import FastAPI, Request
    import uvicorn
    app = FastAPI()
    @app.post("/update_weights")
    async def update_weights(request: Request):
        record(await request.body())
        return {"ok": True}
    @app.get("/latencies")
    def results():
        return latencies
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")
except ImportError:
    from werkzeug.serving import run_simple
    from werkzeug.wrappers import Request, Response
    @Request.application
    def app(request):
        if request.path == "/update_weights":
            record(request.get_data())
            return Response('{"ok": true}', mimetype="application/json")
        return Response(json.dumps(latencies), mimetype="application/json")
    run_simple("127.0.0.1", port, app)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_kind():
    found = all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))
    return "http-fastapi" if found else "http-werkzeug"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    try:
        import requests
    except ImportError as e:
        print(f"SKIP: {e}", file=sys.stderr)
        return
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(500):
            try:
                requests.get(url + "/latencies", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.02)
        rng = random.Random(7)
        for _ in range(args.iterations):
            time.sleep(rng.uniform(50e-6, 250e-6))
            requests.post(url + "/update_weights", json={"t0": time.monotonic_ns()}, timeout=10).raise_for_status()
        ns = sorted(requests.get(url + "/latencies", timeout=10).json())
    finally:
        server.terminate()
        server.wait()
    n = len(ns)
    print(f"{server_kind()},{n},{ns[n // 2] / 1e3:.2f},{ns[n * 99 // 100] / 1e3:.2f},{ns[n * 999 // 1000] / 1e3:.2f},"
          f"{sum(ns) / n / 1e3:.2f}", flush=True)


if __name__ == "__main__":
    main()
