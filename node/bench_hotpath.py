"""The hot-path benchmark: the Rust blend + assembly + re-rank against NumPy.

Both sides run the same computation on the same inputs, interleaved in one
process so that they share the machine's noise: blend four candidate
sources into a pool, assemble the pool's feature matrix, re-rank it with a
genre cap and exploration. The NumPy side is ``hotpath.reference``:
vectorized where NumPy can be, a loop only where the algorithm is
sequential.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import hotpath
from hotpath import reference

USER_DIM, ITEM_DIM, EMB_DIM, GENRES, CONTEXT_DIM = 24, 25, 64, 20, 4


@dataclass(frozen=True)
class HotpathBench:
    items: int = 100_000
    candidates: int = 500
    results: int = 50
    repeat: int = 300
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


def run(cfg: HotpathBench) -> dict[str, Any]:
    """Medians over ``repeat`` interleaved runs of each side, in microseconds."""
    inp = _inputs(cfg)
    t = inp["table"]
    assembler = hotpath.Assembler(t["item_dense"], t["item_emb"], t["item_genre"], t["item_first_ts"])
    blender = hotpath.Blender(cfg.items)
    reranker = hotpath.Reranker(inp["primary"])
    table_args = (t["item_dense"], t["item_emb"], t["item_genre"], t["item_first_ts"])
    rng = np.random.default_rng(cfg.seed + 1)
    model_scores = rng.random(cfg.candidates, dtype=np.float32)
    dense, emb, genre, last_ts, now_ts, context = inp["user"]

    def rust() -> np.ndarray:
        pool, _, _ = blender.blend(inp["sources"], inp["exclude"], cfg.candidates)
        x = assembler.assemble(dense, emb, genre, last_ts, now_ts, context, pool)
        order, _ = reranker.rerank(pool, model_scores[: len(pool)], cfg.results, 3, 0.05, 7)
        return np.asarray(x[order, 0])

    def numpy() -> np.ndarray:
        pool, _, _ = reference.blend(inp["sources"], inp["exclude"], cfg.candidates)
        x = reference.assemble(*table_args, dense, emb, genre, last_ts, now_ts, context, pool)
        order, _ = reference.rerank(inp["primary"], pool, model_scores[: len(pool)], cfg.results, 3, 0.05, 7)
        return np.asarray(x[order, 0])

    if not np.allclose(rust(), numpy(), rtol=1e-5, atol=1e-5):
        raise AssertionError("the Rust and NumPy hot paths disagree; the benchmark would be meaningless")
    timings: dict[str, list[float]] = {"rust": [], "numpy": []}
    sides: dict[str, Callable[[], np.ndarray]] = {"rust": rust, "numpy": numpy}
    for _ in range(10):  # warm-up
        rust(), numpy()
    for _ in range(cfg.repeat):
        for name, fn in sides.items():
            start = time.perf_counter_ns()
            fn()
            timings[name].append((time.perf_counter_ns() - start) / 1e3)
    rust_us = float(np.median(timings["rust"]))
    numpy_us = float(np.median(timings["numpy"]))
    return {
        "candidates": cfg.candidates,
        "rust_us": round(rust_us, 1),
        "numpy_us": round(numpy_us, 1),
        "speedup": round(numpy_us / rust_us, 1),
        "rust_p99_us": round(float(np.percentile(timings["rust"], 99)), 1),
        "numpy_p99_us": round(float(np.percentile(timings["numpy"], 99)), 1),
        "catalog_items": cfg.items,
        "results": cfg.results,
        "repeat": cfg.repeat,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
    }
