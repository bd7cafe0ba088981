"""``edgerank bench latency``: the latency contract, measured.

Without a fault, three runs are reported, each under its own key:

* ``one_in_flight``: one request at a time, back to back (the floor);
* ``half_max`` and ``eighty_pct_max``: Poisson arrivals at 50% and 80% of
  ``max_rps``, the highest rate that passes (:mod:`node.loadgen.search`).

With a fault, one open-loop run at ``rate`` while the fault is on
(``fault_run``); with ``rate`` and no fault, one run at that rate
(``fixed_rate``). Every run reports its rungs, and the CPU the load
generator and (when started here) the node used, in cores, so that a
saturated generator is visible.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from node.conditions import machine
from node.loadgen.faults import FaultPlan, injected
from node.loadgen.histogram import LatencyHistogram
from node.loadgen.local_node import LocalNode
from node.loadgen.requests import RequestMix, bundle_user_ids, prepare_requests
from node.loadgen.result import RunResult
from node.loadgen.scrape import scrape, summarize
from node.loadgen.search import SearchConfig, find_max_rps
from node.loadgen.workers import WorkerPool
from trainer import bundle as bundle_format

WARM_UP_S = 4.0
RUN_KEYS = ("one_in_flight", "half_max", "eighty_pct_max")


@dataclass(frozen=True)
class LatencyConfig:
    bundle_dir: Path
    target: str | None = None  # None: start a node here
    processes: int = 2
    server_workers: int | None = None
    workers: int = 1  # load generator processes (edgerank-loadgen)
    connections: int = 16  # per load generator process: enough for the kernel to spread them evenly
    mix: RequestMix = field(default_factory=RequestMix)
    duration_s: float = 10.0
    search: SearchConfig = field(default_factory=SearchConfig)
    rate: float | None = None  # a fixed rate instead of the search (and the rate of a fault run)
    fault: str | None = None
    ranker_delay_ms: float = 80.0
    redis_delay_ms: float = 20.0
    seed: int = 0


class _Meter:
    """What the node (when local) did across a run: its CPU and its own metrics."""

    def __init__(self, node: LocalNode | None):
        self.node = node

    def run(self, job: Callable[[], RunResult], metrics: bool = True) -> tuple[RunResult, dict[str, Any]]:
        """``job()``, and the node's figures over it: CPU in cores and per request, the server processes'
        shares of it, and (with ``metrics``) what its /metrics counted."""
        node = self.node
        if node is None:
            return job(), {}
        c0, t0 = node.cpu_by_process(), time.monotonic()
        m0 = scrape(node.metrics_port) if metrics else None
        result = job()
        wall = max(time.monotonic() - t0, 1e-9)
        c1 = node.cpu_by_process()
        by_process = [c1[p] - c0.get(p, 0.0) for p in c1]
        used = sum(by_process)
        out: dict[str, Any] = {"node_cpu_cores": round(used / wall, 2)}
        if result.completed:
            out["node_cpu_ms_per_request"] = round(used / result.completed * 1000, 3)
        # How evenly the kernel spread the connections (SO_REUSEPORT) and so the load: the server
        # processes' shares of the node's CPU, largest first (the idle parent left out).
        out["node_cpu_shares"] = sorted((round(c / used, 2) for c in by_process if c > 0.01 * used), reverse=True)
        if m0 is not None:
            # What the node itself counted over the run (its /metrics), beside what the generator saw.
            out["node_metrics"] = summarize(m0, scrape(node.metrics_port))
        return result, out


def _cpu_figures(result: RunResult) -> dict[str, float]:
    wall = max(result.finished - result.started, 1e-9)
    return {"loadgen_cpu_cores": round(result.cpu_s / wall, 2)}


def _per_node_core(max_rps: float, steps: list[dict[str, Any]]) -> float | None:
    """Requests one core of the node serves at ``max_rps``: one second over the node's CPU per request
    at its first passing step there (the load generator's own CPU not counted against it)."""
    for s in steps:
        if s["passed"] and s["rate_rps"] == round(max_rps, 1) and s.get("node_cpu_ms_per_request"):
            return round(1000.0 / s["node_cpu_ms_per_request"], 1)
    return None


def _run_figures(
    result: RunResult, rate: float | None, max_rps: float | None, catalog: int | None, mix: RequestMix
) -> dict[str, Any]:
    return {
        "catalog_items": catalog,
        "candidates": mix.candidates,
        "max_rps": None if max_rps is None else round(max_rps, 1),
        "rate_rps": None if rate is None else round(rate, 1),
        "achieved_rps": round(result.achieved_rps(), 1),
        "requests": result.completed,
        **result.histogram.summary(),
        "errors": sum(result.errors.values()),
        "error_codes": dict(result.errors),
        "rungs": dict(sorted(result.rungs.items())),
        "degraded_share": round(result.degraded_share(), 4),
        **_cpu_figures(result),
        "send_lag_p99_ms": round(result.send_lag_p99_ms, 3),
        # The node's pipeline time (RankResponse.total_ms) of the same answers: the rest of the latency
        # is queueing, gRPC, the network and time off the CPU.
        "node_pipeline_ms": result.pipeline.summary(),
    }


def _start(
    config: LatencyConfig, bundle_dir: Path, requests: list[Any], plan: FaultPlan | None, session: ExitStack
) -> tuple[LocalNode | None, WorkerPool]:
    """A node (unless the target is external) and the load generator's workers, warmed up."""
    node: LocalNode | None = None
    if config.target is None:
        node = LocalNode(bundle_dir, config.processes, config.server_workers, plan.node_env if plan else None)
        session.enter_context(node)
    pool = WorkerPool(node.target if node else str(config.target), config.workers, requests, config.connections)
    session.callback(pool.close)
    pool.run_open(config.rate or config.search.start_rps, WARM_UP_S, seed=config.seed + 999)
    return node, pool


def run_latency(config: LatencyConfig, on_step: Any = None) -> tuple[dict[str, Any], dict[str, LatencyHistogram]]:
    """(the result document, the histogram of each run by key)."""
    bundle_dir = bundle_format.resolve(config.bundle_dir)
    manifest = bundle_format.read_manifest(bundle_dir)
    catalog = int((manifest.get("counts") or {}).get("items", 0)) or None
    requests = prepare_requests(bundle_user_ids(bundle_dir), config.mix, config.seed)
    out: dict[str, Any] = {
        "bundle": str(bundle_dir),
        "catalog_items": catalog,
        "candidates": config.mix.candidates,
        "unknown_share": config.mix.unknown_share,
        "machine": machine(),
    }
    with ExitStack() as stack:
        plan: FaultPlan | None = None
        if config.fault is not None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edgerank-fault-")))
            plan = stack.enter_context(injected(config.fault, workdir, config.ranker_delay_ms, config.redis_delay_ms))
            out["fault"] = plan.describe()
        session = stack.enter_context(ExitStack())
        node, pool = _start(config, bundle_dir, requests, plan, session)
        target = node.target if node else str(config.target)
        out["node"] = {"target": target}
        if node is not None:
            out["node"].update(
                processes=config.processes,
                workers=config.server_workers,
                rss_mib=sorted(node.rss_mib().values(), reverse=True),
            )
        out["loadgen"] = {"workers": config.workers, "connections_per_worker": config.connections}
        meter = _Meter(node)
        if plan is not None:
            plan.activate()
        if plan is not None or config.rate is not None:
            rate = float(config.rate or config.search.start_rps)
            result, figures = meter.run(lambda: pool.run_open(rate, config.duration_s, seed=config.seed))
            key = "fault_run" if plan else "fixed_rate"
            out["max_rps"] = None
            out[key] = {**_run_figures(result, rate, None, catalog, config.mix), **figures}
            return out, {key: result.histogram}
        runs: dict[str, Any] = {}
        histograms: dict[str, LatencyHistogram] = {}
        closed, figures = meter.run(lambda: pool.run_closed(config.duration_s))
        runs["one_in_flight"] = {**_run_figures(closed, None, None, catalog, config.mix), **figures}
        histograms["one_in_flight"] = closed.histogram

        def step(rate: float) -> tuple[RunResult, float, dict[str, Any]]:
            seed = config.seed + int(rate)
            # The node's metrics are kept for the reported runs only.
            r, figures = meter.run(lambda: pool.run_open(rate, config.search.step_s, seed=seed), metrics=False)
            offered = r.sent / config.search.step_s
            if on_step is not None:
                on_step(rate, r)
            return r, offered, {**_cpu_figures(r), **figures}

        max_rps, steps = find_max_rps(step, config.search)
        out["max_rps"] = round(max_rps, 1)
        out["max_rps_per_node_core"] = _per_node_core(max_rps, steps)
        if node is not None:
            # The search overloads the node; its ladder may remember that for a while. The reported
            # runs get a fresh node.
            session.close()
            node, pool = _start(config, bundle_dir, requests, plan, session)
            meter = _Meter(node)
        out["search"] = {"budget_ms": config.search.budget_ms, "step_s": config.search.step_s, "steps": steps}
        runs["one_in_flight"]["max_rps"] = out["max_rps"]
        for key, share in (("half_max", 0.5), ("eighty_pct_max", 0.8)):
            rate = max_rps * share
            if rate <= 0:
                runs[key] = None
                continue
            r, figures = meter.run(partial(pool.run_open, rate, config.duration_s, seed=config.seed + 7))
            runs[key] = {**_run_figures(r, rate, max_rps, catalog, config.mix), **figures}
            histograms[key] = r.histogram
        out.update(runs)
        return out, histograms


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
