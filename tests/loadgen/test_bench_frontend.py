"""``python -m node.bench_frontend``: the gRPC front end's cost per call, measured on a canned server."""

from __future__ import annotations

import json
import subprocess
import sys

from node.bench_frontend import canned_response
from node.gen.edgerank.v1 import ranker_pb2


def test_canned_answer_is_as_big_as_a_real_one() -> None:
    r = canned_response(20)
    assert len(r.items) == 20 and [i.rank for i in r.items] == list(range(20))
    assert r.served_by == ranker_pb2.SERVED_BY_FULL and len(r.stages) == 5


def test_short_run_reports_server_cpu_per_request() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "node.bench_frontend", "--rate", "100", "--duration", "1", "--variants", "aio", "sync",
         "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert [r["variant"] for r in doc["runs"]] == ["aio", "sync"]
    for r in doc["runs"]:
        assert r["errors"] == 0 and r["requests"] >= 80
        # Serving costs the server CPU, read from its threads.
        assert r["server_cpu_ms_per_request"] > 0 and r["server_cpu_ms_per_request_by_thread"]
    assert doc["command"].startswith("python -m node.bench_frontend --rate 100")
