"""The hot-path benchmark: the Rust blend + assembly + re-rank against NumPy.

Both sides run the same computation on the same inputs, the calls the node's
pipeline makes per request (``node/pipeline.py``: ``Blender.blend`` through
the candidate generator, ``Assembler.assemble``, ``Reranker.rerank``, then the
ranked items gathered): blend four candidate sources into a pool, assemble
the pool's feature matrix, re-rank it with a genre cap and exploration. The
NumPy side is ``hotpath.reference``: vectorized where NumPy can be, a loop
only where the algorithm is sequential.

The two sides are interleaved in one process (the order alternating from one
repeat to the next) so that they share the machine's noise, and the ratio is
taken from the same run. The figures are medians over the repeats of the
wall-clock time, with the minima beside them, and medians of the thread's
CPU time, which leave out the time the thread waited for a CPU on a busy
machine; the load average is recorded at the start and the end.

``assemble_tables`` times ``Assembler.assemble`` alone on the two kinds of
item table, interleaved the same way: packed in memory (``Assembler(...)``,
what the trainer uses) and the mapped item rows file (``Assembler.open``,
what a node serves from), each repeat on a new random pool so that the rows
come from memory rather than from the caches.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import hotpath
from hotpath import reference
from node.conditions import load_average, machine

USER_DIM, ITEM_DIM, EMB_DIM, GENRES, CONTEXT_DIM = 24, 25, 64, 20, 4
STAGES = ("blend", "assemble", "rerank")


@dataclass(frozen=True)
class HotpathBench:
    items: int = 100_000
    candidates: int = 500
    results: int = 50
    repeat: int = 1000
    seed: int = 0


def _inputs(cfg: HotpathBench) -> dict[str, Any]:
    rng = np.random.default_rng(cfg.seed)
    n, f32 = cfg.items, np.float32
    table = {
        "item_dense": rng.standard_normal((n, ITEM_DIM), dtype=f32),
        "item_emb": rng.standard_normal((n, EMB_DIM), dtype=f32),
        "item_genre": (rng.random((n, GENRES)) < 0.1).astype(f32),
        "item_first_ts": rng.uniform(1.4e9, 1.7e9, n),
    }
    primary = rng.integers(0, GENRES, n).astype(np.uint16)

    def source(k: int, quota: int) -> tuple[np.ndarray, np.ndarray, int]:
        items = rng.choice(n, size=k, replace=False).astype(np.uint32)
        return items, np.sort(rng.random(k, dtype=f32))[::-1].copy(), quota

    c = cfg.candidates
    sources = [
        source(c + 150, int(0.7 * c)),
        source(60, int(0.1 * c)),
        source(1000, int(0.1 * c)),
        source(1000, int(0.1 * c)),
    ]
    user = (
        rng.standard_normal(USER_DIM, dtype=f32),
        rng.standard_normal(EMB_DIM, dtype=f32),
        rng.random(GENRES, dtype=f32),
        1.65e9,
        1.7e9,
        rng.standard_normal(CONTEXT_DIM, dtype=f32),
    )
    exclude = rng.choice(n, size=150, replace=False).astype(np.uint32)
    return {"table": table, "primary": primary, "sources": sources, "user": user, "exclude": exclude}


Side = Callable[[list[int]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _sides(cfg: HotpathBench, inp: dict[str, Any]) -> dict[str, Side]:
    """Each side: (ranked items, pool, feature matrix), stage ends appended to ``marks``."""
    t = inp["table"]
    table = (t["item_dense"], t["item_emb"], t["item_genre"], t["item_first_ts"])
    assembler = hotpath.Assembler(*table)
    blender = hotpath.Blender(cfg.items)
    reranker = hotpath.Reranker(inp["primary"])
    model_scores = np.random.default_rng(cfg.seed + 1).random(cfg.candidates, dtype=np.float32)
    sources, exclude, primary = inp["sources"], inp["exclude"], inp["primary"]
    dense, emb, genre, last_ts, now_ts, context = inp["user"]
    results, clock = cfg.results, time.perf_counter_ns

    def rust(marks: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pool, _, _ = blender.blend(sources, np.ascontiguousarray(exclude, np.uint32), cfg.candidates)
        marks.append(clock())
        x = assembler.assemble(dense, emb, genre, last_ts, now_ts, context, pool)
        marks.append(clock())
        scores = np.ascontiguousarray(model_scores[: len(pool)], np.float32)
        positions, _ = reranker.rerank(pool, scores, results, 3, 0.05, 7)
        marks.append(clock())
        return pool[np.asarray(positions, dtype=np.intp)], pool, x

    def numpy(marks: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pool, _, _ = reference.blend(sources, exclude, cfg.candidates)
        marks.append(clock())
        x = reference.assemble(*table, dense, emb, genre, last_ts, now_ts, context, pool)
        marks.append(clock())
        positions, _ = reference.rerank(primary, pool, model_scores[: len(pool)], results, 3, 0.05, 7)
        marks.append(clock())
        return pool[np.asarray(positions, dtype=np.intp)], pool, x

    return {"rust": rust, "numpy": numpy}


def _check_agree(sides: dict[str, Side]) -> None:
    (r_ranked, r_pool, r_x), (n_ranked, n_pool, n_x) = (side([]) for side in sides.values())
    same = np.array_equal(r_pool, n_pool) and np.array_equal(r_ranked, n_ranked)
    if not same or not np.allclose(r_x, n_x, rtol=1e-5, atol=1e-5):
        raise AssertionError("the Rust and NumPy hot paths disagree; the benchmark would be meaningless")


def assemble_tables(cfg: HotpathBench, inp: dict[str, Any]) -> dict[str, Any]:
    """Medians (and minima, thread CPU medians) of ``assemble`` on the in-memory and the mapped table, in us."""
    t = inp["table"]
    table = (t["item_dense"], t["item_emb"], t["item_genre"], t["item_first_ts"])
    pools = np.random.default_rng(cfg.seed + 2).integers(0, cfg.items, (cfg.repeat, cfg.candidates)).astype(np.uint32)
    dense, emb, genre, last_ts, now_ts, context = inp["user"]

    def assemble(a: hotpath.Assembler, pool: np.ndarray) -> np.ndarray:
        return a.assemble(dense, emb, genre, last_ts, now_ts, context, pool)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "item_rows.npy"
        hotpath.write_item_rows(path, *table)
        tables = {
            "in_memory": hotpath.Assembler(*table),
            "mapped": hotpath.Assembler.open(path, EMB_DIM, GENRES, ITEM_DIM),
        }
        if not np.array_equal(assemble(tables["in_memory"], pools[0]), assemble(tables["mapped"], pools[0])):
            raise AssertionError("the in-memory and the mapped tables assemble different rows")
        wall: dict[str, list[float]] = {name: [] for name in tables}
        cpu: dict[str, list[float]] = {name: [] for name in tables}
        order = list(tables)
        for pool in pools[:20]:  # warm-up (and the mapped pages faulted in by the process)
            for a in tables.values():
                assemble(a, pool)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for pool in pools:
                order.reverse()
                for name in order:
                    c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
                    assemble(tables[name], pool)
                    w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                    wall[name].append((w1 - w0) / 1e3)
                    cpu[name].append((c1 - c0) / 1e3)
        finally:
            if gc_was_enabled:
                gc.enable()
    out: dict[str, Any] = {}
    for name in tables:
        out[f"{name}_us"] = round(float(np.median(wall[name])), 1)
        out[f"{name}_min_us"] = round(float(np.min(wall[name])), 1)
        out[f"{name}_cpu_us"] = round(float(np.median(cpu[name])), 1)
    out["pools"] = "a new random pool per repeat (rows from memory, not the caches); both tables give the same bits"
    return out


def run(cfg: HotpathBench) -> dict[str, Any]:
    """Medians and minima over ``repeat`` interleaved runs of each side, in microseconds."""
    inp = _inputs(cfg)
    sides = _sides(cfg, inp)
    _check_agree(sides)
    conditions = machine(numpy=np.__version__, hotpath=hotpath.__version__)
    totals: dict[str, list[float]] = {name: [] for name in sides}
    stages: dict[str, dict[str, list[float]]] = {name: {s: [] for s in STAGES} for name in sides}
    order = list(sides)
    for _ in range(20):  # warm-up
        for fn in sides.values():
            fn([])
    cpu: dict[str, list[float]] = {name: [] for name in [*sides, "empty"]}
    empty = np.empty(0)

    def nothing(marks: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        marks.extend((marks[0], marks[0], marks[0]))
        return empty, empty, empty

    timed: dict[str, Side] = {**sides, "empty": nothing}
    wall, thread_cpu = time.perf_counter_ns, time.thread_time_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection would land on whichever side is running
    try:
        for _ in range(cfg.repeat):
            order.reverse()  # rust first, then numpy first, ...
            for name in [*order, "empty"]:
                c0 = thread_cpu()
                marks = [wall()]
                timed[name](marks)
                end = wall()
                c1 = thread_cpu()
                cpu[name].append((c1 - c0) / 1e3)
                if name == "empty":
                    continue
                totals[name].append((end - marks[0]) / 1e3)
                for stage, a, b in zip(STAGES, marks[:-1], marks[1:], strict=True):
                    stages[name][stage].append((b - a) / 1e3)
    finally:
        if gc_was_enabled:
            gc.enable()
    # Thread CPU time excludes the time the thread waited for a CPU (the
    # machine may be shared); the cost of reading that clock is measured
    # around an empty call and subtracted.
    clock_cost = float(np.median(cpu.pop("empty")))
    rust_cpu = float(np.median(cpu["rust"])) - clock_cost
    numpy_cpu = float(np.median(cpu["numpy"])) - clock_cost

    def median(xs: list[float]) -> float:
        return round(float(np.median(xs)), 1)

    def lowest(xs: list[float]) -> float:
        return round(float(np.min(xs)), 1)

    rust_us, numpy_us = float(np.median(totals["rust"])), float(np.median(totals["numpy"]))
    rust_min, numpy_min = float(np.min(totals["rust"])), float(np.min(totals["numpy"]))
    return {
        "candidates": cfg.candidates,
        "rust_us": round(rust_us, 1),
        "numpy_us": round(numpy_us, 1),
        "speedup": round(numpy_us / rust_us, 1),
        "rust_min_us": round(rust_min, 1),
        "numpy_min_us": round(numpy_min, 1),
        "speedup_min": round(numpy_min / rust_min, 1),
        "rust_cpu_us": round(rust_cpu, 1),
        "numpy_cpu_us": round(numpy_cpu, 1),
        "speedup_cpu": round(numpy_cpu / rust_cpu, 1),
        "rust_p99_us": round(float(np.percentile(totals["rust"], 99)), 1),
        "numpy_p99_us": round(float(np.percentile(totals["numpy"], 99)), 1),
        "stages_median_us": {name: {s: median(v) for s, v in st.items()} for name, st in stages.items()},
        "stages_min_us": {name: {s: lowest(v) for s, v in st.items()} for name, st in stages.items()},
        "assemble_tables": assemble_tables(cfg, inp),
        "catalog_items": cfg.items,
        "results": cfg.results,
        "repeat": cfg.repeat,
        "method": (
            "interleaved, order alternating per repeat, gc disabled while timing, 20 warm-up runs per side; "
            "*_us: wall-clock medians, *_cpu_us: thread CPU time medians (clock cost subtracted)"
        ),
        "machine": {**conditions, "load_avg_end": load_average()},
    }
