"""What the gRPC front end costs per Rank, without the pipeline: the node's server answering a canned response.

A server process is started as the node starts its own (``grpc.aio`` on an event loop in a thread of
its own, the node's ``ErrorInterceptor``), but its ``Rank`` returns a prebuilt response of
``--num-results`` items and the node's six stage timings, as big as a real answer. ``edgerank-loadgen``
drives it at a fixed open-loop rate, and the server's CPU per request is read from /proc, per
thread: the loop thread (the handler, gRPC's Python and Cython, protobuf), gRPC's poller thread
(which wakes the loop for every completion) and its event-engine threads (the sockets). Variants:
``aio`` (as the node), ``aio-bare`` (no interceptor) and ``sync`` (``grpc.server`` with one pool
thread, the node's server before 89c5987). Subtract from the node's CPU per request (``edgerank
bench latency``, ``node_cpu_ms_per_request``) to get what the pipeline costs under load.

    python -m node.bench_frontend --rate 500 --duration 10 [--variants aio aio-bare sync] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from node.conditions import machine
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.interceptor import ErrorInterceptor
from node.loadgen.local_node import stat_cpu_s
from node.loadgen.requests import RequestMix, prepare_requests
from node.loadgen.workers import WorkerPool

VARIANTS = ("aio", "aio-bare", "sync")
STAGES = ("features", "retrieve", "blend", "score", "rerank")


def canned_response(num_results: int) -> ranker_pb2.RankResponse:
    response = ranker_pb2.RankResponse(
        bundle_version="20261201T192941Z-34b634",
        model_version="student-20261201T192941Z",
        served_by=ranker_pb2.SERVED_BY_FULL,
        experiment_arm="champion",
        request_id="lg-0-0",
        total_ms=0.75,
    )
    for rank in range(num_results):
        response.items.add(item_id=f"i{rank:07d}", score=1.0 / (rank + 1), rank=rank, source=ranker_pb2.SOURCE_ANN)
    for stage in STAGES:
        response.stages.add(stage=stage, ms=0.1)
    return response


class CannedRanker(ranker_pb2_grpc.RankerServicer):
    def __init__(self, response: ranker_pb2.RankResponse):
        self.response = response

    async def Rank(self, request: ranker_pb2.RankRequest, context: grpc.aio.ServicerContext) -> ranker_pb2.RankResponse:
        return self.response


class SyncCannedRanker(ranker_pb2_grpc.RankerServicer):
    def __init__(self, response: ranker_pb2.RankResponse):
        self.response = response

    def Rank(self, request: ranker_pb2.RankRequest, context: grpc.ServicerContext) -> ranker_pb2.RankResponse:
        return self.response


def serve(variant: str, port_file: Path, num_results: int) -> None:
    """The server process: bind a free loopback port, write it to ``port_file``, serve until stdin closes."""
    response = canned_response(num_results)
    if variant == "sync":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rank"))
        ranker_pb2_grpc.add_RankerServicer_to_server(SyncCannedRanker(response), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        port_file.write_text(str(port))
        sys.stdin.read()
        server.stop(0)
        return
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="grpc-aio", daemon=True).start()

    async def start() -> grpc.aio.Server:
        interceptors = [ErrorInterceptor()] if variant == "aio" else []
        server = grpc.aio.server(interceptors=interceptors)
        ranker_pb2_grpc.add_RankerServicer_to_server(CannedRanker(response), server)
        port_file.write_text(str(server.add_insecure_port("127.0.0.1:0")))
        await server.start()
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result()
    sys.stdin.read()
    asyncio.run_coroutine_threadsafe(server.stop(0), loop).result()


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (threads of one name summed)."""
    out: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
        except FileNotFoundError:
            continue  # a thread that ended between the listing and the read
        out[comm] += stat_cpu_s(task / "stat")
    return out


def run_variant(variant: str, rate: float, duration_s: float, num_results: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgerank-frontend-") as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.bench_frontend", "--serve", variant, "--port-file", str(port_file)],
            stdin=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {variant} server did not start (exit {proc.poll()})")
                time.sleep(0.05)
            target = f"127.0.0.1:{port_file.read_text()}"
            users = np.array([f"u{i}" for i in range(1000)])
            requests = prepare_requests(users, RequestMix(num_results=num_results, unknown_share=0.0), seed=0)
            pool = WorkerPool(target, 1, requests)
            try:
                pool.run_open(rate, 2.0, seed=1)  # warm-up
                before = thread_cpu_s(proc.pid)
                result = pool.run_open(rate, duration_s, seed=2)
                after = thread_cpu_s(proc.pid)
            finally:
                pool.close()
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(10)
    n = max(result.completed, 1)
    by_thread = {name: round((after[name] - before.get(name, 0.0)) / n * 1000, 4) for name in sorted(after)}
    return {
        "variant": variant,
        "rate_rps": rate,
        "achieved_rps": round(result.achieved_rps(), 1),
        "requests": result.completed,
        "errors": sum(result.errors.values()),
        **result.histogram.summary(),
        "server_cpu_ms_per_request": round(sum(by_thread.values()), 4),
        "server_cpu_ms_per_request_by_thread": {k: v for k, v in by_thread.items() if v > 0},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m node.bench_frontend", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per variant (default 10)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--num-results", type=int, default=20, help="items in the canned answer (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port_file, args.num_results)
        return
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    doc: dict[str, Any] = {
        "machine": machine(),
        "command": "python -m node.bench_frontend " + " ".join(argv or sys.argv[1:]),
    }
    doc["runs"] = [run_variant(v, args.rate, args.duration, args.num_results) for v in args.variants]
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    print(f"canned Rank at {args.rate:g}/s for {args.duration:g} s, {args.num_results} items per answer")
    print(f"  {'variant':9} {'achieved':>9} {'p50 ms':>7} {'p99 ms':>7} {'server CPU ms/req':>18}  by thread")
    for r in doc["runs"]:
        threads = " ".join(f"{k}={v:.3f}" for k, v in r["server_cpu_ms_per_request_by_thread"].items())
        print(
            f"  {r['variant']:9} {r['achieved_rps']:9.1f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['server_cpu_ms_per_request']:18.3f}  {threads}"
        )


if __name__ == "__main__":
    main()
