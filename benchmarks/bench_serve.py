"""Serving benchmark: throughput and latency of ``decoderlens serve`` under 1, 4, 16 and 64 concurrent clients.

``decoderlens serve`` runs in its own process on 127.0.0.1 (a free port; stopped at the end) over the shipped logic
model, at the server's default settings; clients (threads of this process, one keep-alive connection each) send
single-formula readout requests, a bounded number in all. Each answer is checked against the answer the same
request got when requests came one at a time; lost or wrong answers are counted.

    python benchmarks/bench_serve.py --requests 128 --clients 1,4,16,64
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from decoderlens.logic import shipped_model_path
from decoderlens.logic.demo import held_out_examples
from decoderlens.serve.limits import ServeLimits


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(threads: int) -> tuple[subprocess.Popen[bytes], str]:
    """``decoderlens serve`` in a process of its own; waits until it answers."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([sys.executable, "-m", "decoderlens", "serve", str(shipped_model_path()), "--port",
                                str(port), "--device", "cpu"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/info", timeout=1).status_code == 200:
                return process, url
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def run(url: str, formulas: list[str], clients: int) -> tuple[float, list[float], list[Any]]:
    """Send one request per formula from ``clients`` threads; wall time, latencies and answers."""
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def ask(formula: str) -> Any:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120)
        began = time.perf_counter()
        try:
            answer = local.client.post(f"{url}/api/readout", json={"inputs": [formula]}).json()
        except httpx.HTTPError:
            answer = None
        with lock:
            latencies.append(time.perf_counter() - began)
        return answer

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(ask, formulas))
    return time.perf_counter() - began, latencies, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    args = parser.parse_args()
    formulas = [e.formula for e in held_out_examples(args.requests)]
    process, url = start(args.threads)
    try:
        _, _, expected = run(url, formulas, 1)
        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            seconds, latencies, answers = run(url, formulas, clients)
            lost = sum(a is None for a in answers)
            wrong = sum(a is not None and a != e for a, e in zip(answers, expected, strict=True))
            rows.append((clients, len(formulas) / seconds, statistics.median(latencies),
                         statistics.quantiles(latencies, n=20)[18], lost, wrong))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    print(f"logic model, {args.requests} single-formula requests per row, {args.threads} torch threads in the server, "
          f"defaults (batches of up to {ServeLimits().max_batch} inputs within {ServeLimits().max_wait_ms:g} ms)")
    print("| clients | requests/s | p50 latency (ms) | p95 latency (ms) | lost | wrong | throughput vs 1 client |")
    print("|---|---|---|---|---|---|---|")
    base = rows[0][1]
    for clients, rate, p50, p95, lost, wrong in rows:
        print(f"| {clients} | {rate:.1f} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | {lost} | {wrong} | "
              f"{rate / base:.2f}x |")


if __name__ == "__main__":
    main()
