"""How long loading a bundle stalls a node's other threads: ``python -m replicator.bench_stall BUNDLE``.

A node loads a new bundle inside its serving process, beside the bundle it
serves. Any step of the load that holds the GIL for a long time blocks every
request thread for that long. This measures it on one process: a thread asks
to wake up every millisecond while the main thread runs
:meth:`node.bundle.LoadedBundle.load` and :meth:`~node.bundle.LoadedBundle.warm_up`;
a tick that comes late by more than ``--report-ms`` is a stall. It prints
one JSON document: the load's wall time, the longest stall, how many stalls
exceeded 5 and 20 ms, and the slowest ticks with their time since the start.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from pathlib import Path
from typing import Any


class Ticker:
    """A thread that sleeps 1 ms at a time and records how late each wake-up was."""

    def __init__(self, period_s: float = 0.001):
        self.period_s = period_s
        self.late_ms: list[tuple[float, float]] = []  # (seconds since start, ms late)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self.t0 = time.perf_counter()

    def _run(self) -> None:
        period = self.period_s
        while not self._stop.is_set():
            t = time.perf_counter()
            time.sleep(period)
            late = (time.perf_counter() - t - period) * 1e3
            self.late_ms.append((t - self.t0, late))

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, report_ms: float, top: int = 10) -> dict[str, Any]:
        lates = [late for _, late in self.late_ms]
        worst = sorted(self.late_ms, key=lambda x: -x[1])[:top]
        return {
            "ticks": len(lates),
            "longest_stall_ms": round(max(lates, default=0.0), 1),
            "stalls_over_5ms": sum(late > 5 for late in lates),
            "stalls_over_20ms": sum(late > 20 for late in lates),
            # "seconds since the start: ms late", slowest first
            "slowest": [f"{t:.3f}: {late:.1f}" for t, late in worst if late > report_ms],
        }


def measure(bundle: Path, verified_marker: bool, report_ms: float = 2.0, node: bool = False) -> dict[str, Any]:
    """``node``: load as a serving node does (``Node.prepare_bundle``: load, warm-up, pipeline warm-up),
    in a started node that serves the same bundle already."""
    from node.bundle import LoadedBundle
    from node.conditions import machine

    conditions = machine()
    serving = None
    if node:
        from node.server import Node
        from node.settings import Settings

        serving = Node(Settings.load({"bundle_dir": bundle, "port": 0, "workers": 2}, env={})).start()
    gc.collect()
    with Ticker() as ticker:
        time.sleep(0.2)  # the ticker's own baseline before the load
        t = time.perf_counter()
        if serving is not None:
            loaded = serving.prepare_bundle(bundle)
            load_s = time.perf_counter() - t
        else:
            loaded = LoadedBundle.load(bundle, **({"trust_marker": True} if verified_marker else {}))
            load_s = time.perf_counter() - t
            loaded.warm_up()
        warm_s = time.perf_counter() - t - load_s
        time.sleep(0.2)
    if serving is not None:
        serving.stop(0)
    return {
        "bundle": str(loaded.path),
        "items": loaded.n_items,
        "load_s": round(load_s, 3),
        "warm_up_s": round(warm_s, 3),
        "load_started_at_s": round(t - ticker.t0, 3),
        "phases_s": getattr(loaded, "load_seconds", None),
        **ticker.summary(report_ms),
        "machine": conditions,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="a bundle directory or a root with LATEST")
    p.add_argument("--trust-marker", action="store_true", help="skip the sha256 pass when a verified marker matches")
    p.add_argument("--report-ms", type=float, default=2.0, help="list ticks later than this (default 2 ms)")
    p.add_argument("--node", action="store_true", help="load and warm up in a started node (Node.prepare_bundle)")
    args = p.parse_args()
    print(json.dumps(measure(args.bundle, args.trust_marker, args.report_ms, args.node), indent=2))


if __name__ == "__main__":
    main()
