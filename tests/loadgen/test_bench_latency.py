"""``edgerank bench latency`` end to end against a small bundle, and its handling of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_KEYS = (
    "catalog_items",
    "candidates",
    "max_rps",
    "rate_rps",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "errors",
    "rungs",
)


def edgerank(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from node.cli import main; sys.exit(main(sys.argv[1:]))", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "EDGERANK_GRACE_S": "1"},
    )


def test_short_run_prints_the_three_runs(small_bundle: Path) -> None:
    r = edgerank(
        "bench", "latency", "--bundle-dir", str(small_bundle), "--processes", "1", "--workers", "1",
        "--duration", "0.5", "--step-seconds", "0.5", "--start-rate", "40", "--max-rate", "80",
        "--bisect-steps", "0", "--unknown-share", "0.2", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # The search ramps from 40 to at most 80 (a step that fails on a busy machine is retried, not fatal); max_rps
    # is the highest rate that passed, and the two open-loop runs are at its shares.
    steps = doc["search"]["steps"]
    assert steps[0]["rate_rps"] == 40.0 and {s["rate_rps"] for s in steps} <= {40.0, 80.0}, steps
    assert doc["max_rps"] == max(s["rate_rps"] for s in steps if s["passed"]), steps
    assert all(s["node_cpu_ms_per_request"] > 0 for s in steps), steps
    at_max = next(s for s in steps if s["passed"] and s["rate_rps"] == doc["max_rps"])
    assert doc["max_rps_per_node_core"] == round(1000 / at_max["node_cpu_ms_per_request"], 1)
    for key in ("one_in_flight", "half_max", "eighty_pct_max"):
        run = doc[key]
        assert set(RUN_KEYS) <= set(run), key
        assert run["catalog_items"] == 2000 and run["candidates"] == 500
        assert run["errors"] == 0
        assert run["p50_ms"] <= run["p99_ms"] <= run["p999_ms"] <= run["max_ms"]
        assert set(run["rungs"]) <= {"FULL", "POPULARITY"} and run["rungs"].get("FULL", 0) > 0
        assert run["loadgen_cpu_cores"] >= 0
        # The node was started here: its CPU per request is measured (from /proc, all its processes).
        assert run["node_cpu_ms_per_request"] > 0
        assert run["node_cpu_shares"] == [1.0]  # one server process (the parent idles)
        # The node's own /metrics over the run: the same rung mix as the generator saw, and every stage.
        assert run["node_metrics"]["rungs"] == run["rungs"], key
        assert {"features", "retrieve", "blend", "rerank"} <= set(run["node_metrics"]["stages"])
        assert run["node_metrics"]["stages"]["rerank"]["count"] >= run["rungs"]["FULL"] > 0
    assert doc["one_in_flight"]["rate_rps"] is None
    assert doc["half_max"]["rate_rps"] == round(0.5 * doc["max_rps"], 1)
    assert doc["eighty_pct_max"]["rate_rps"] == round(0.8 * doc["max_rps"], 1)
    # A fifth of the users are unknown: popularity serves them.
    assert doc["half_max"]["rungs"].get("POPULARITY", 0) > 0
    # The conditions of the run, as every benchmark states them.
    assert doc["machine"]["cpus"] >= 1 and len(doc["machine"]["load_avg_start"]) == 3 and doc["machine"]["cpu"]


def test_index_down_fault_serves_popularity(small_bundle: Path) -> None:
    r = edgerank(
        "bench", "latency", "--bundle-dir", str(small_bundle), "--processes", "1", "--workers", "1",
        "--rate", "50", "--duration", "0.5", "--fault", "index-down", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fault"]["name"] == "index-down" and doc["fault"]["node_supports"] is True
    run = doc["fault_run"]
    assert run["errors"] == 0
    assert set(run["rungs"]) == {"POPULARITY"}
    # The node counted the same, and why it moved down the ladder: the warm users' retrieval failed (the
    # unknown users are served popularity without a fallback).
    assert run["node_metrics"]["rungs"] == run["rungs"]
    assert set(run["node_metrics"]["fallbacks"]) == {"retrieval"}
    assert 0 < run["node_metrics"]["fallbacks"]["retrieval"] <= run["rungs"]["POPULARITY"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--processes", "0"], "--processes must be positive, got 0"),
        (["--unknown-share", "1.5"], "--unknown-share must be in [0, 1], got 1.5"),
        (["--fault", "index-down", "--target", "127.0.0.1:1"], "--fault needs a node started here"),
        (["--num-results", "600"], "--num-results must not exceed --candidates"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(small_bundle: Path, args: list[str], message: str) -> None:
    r = edgerank("bench", "latency", "--bundle-dir", str(small_bundle), *args, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("edgerank: error: ")
    assert message in r.stderr


def test_missing_bundle_is_exit_2(tmp_path: Path) -> None:
    r = edgerank("bench", "latency", "--bundle-dir", str(tmp_path / "nope"), timeout=30)
    assert r.returncode == 2 and "does not exist" in r.stderr
