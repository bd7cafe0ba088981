"""The user retrieval's ANN search at depth: usearch's graph (``hotpath.AnnIndex``) against the IVF index
(``hotpath.IvfIndex``), on a bundle's own item and user embeddings.

Recall@k is measured against an exact search (NumPy, every item) for a seeded sample of the bundle's users
as queries; the time is per single-query call from Python on one thread, as the node makes it: wall-clock
medians and the thread's CPU time (which leaves out the time spent waiting for a CPU on a shared machine).
The sides are interleaved query by query so that they share the machine's noise.

Run ``python -m node.bench_ann BUNDLE_DIR [--json]``. Without IVF files in the bundle, the IVF index is
built here (``trainer.ivf.build_ivf``, ``--nlist``); the bundle directory is only read.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import hotpath
from node.conditions import load_average, machine
from trainer import ivf
from trainer.bundle import MANIFEST, resolve
from trainer.rows import ItemTables

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def exact_top(item_emb: np.ndarray, queries: np.ndarray, k: int, chunk: int = 32) -> np.ndarray:
    """i64 [len(queries), k]: each query's ``k`` best items by dot product, best first."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ item_emb.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return len(np.intersect1d(found, truth, assume_unique=True)) / len(truth)


def run(
    bundle_dir: Path,
    queries: int,
    ks: list[int],
    nprobes: list[int],
    rescore: float,
    nlist: int,
    seed: int,
) -> dict[str, Any]:
    bundle_dir = resolve(bundle_dir)
    # Read as JSON, not checked as a servable bundle: the benchmark only reads the embeddings and the index,
    # so it compares the searches on bundles of any format.
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    if (bundle_dir / "item_emb.npy").is_file():  # format 2 and older
        item_emb = np.load(bundle_dir / "item_emb.npy", mmap_mode="r")
    else:  # a view of the mapped item rows
        item_emb = ItemTables.open(bundle_dir, manifest).emb
    user_emb = np.load(bundle_dir / "user_emb.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    q = np.ascontiguousarray(user_emb[np.sort(rng.choice(len(user_emb), queries, replace=False))], np.float32)
    conditions = machine(numpy=np.__version__, hotpath=hotpath.__version__)
    item_emb = np.ascontiguousarray(item_emb)  # in memory: the exact search and the re-score read it all
    truth = exact_top(item_emb, q, max(ks))

    hnsw = hotpath.AnnIndex.open(bundle_dir / "index.usearch")
    hnsw.expansion_search = int(manifest["index"].get("expansion_search", hnsw.expansion_search))
    has_ivf = all((bundle_dir / name).exists() for name in ivf.FILES)
    t0 = time.perf_counter()
    built = ivf.load(bundle_dir) if has_ivf else ivf.build_ivf(item_emb, ivf.IvfConfig(nlist=nlist), progress=True)
    build_s = time.perf_counter() - t0
    index = built.index(item_emb)

    sides: dict[str, Search] = {"hnsw": lambda v, k: hnsw.search(v, k)}
    for nprobe in nprobes:
        sides[f"ivf nprobe={nprobe}"] = ivf.ivf_search(index, nprobe, rescore)

    rows = []
    for k in ks:
        exact_k = truth[:, :k]
        wall: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        recall: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for _ in range(2):  # warm-up: fault the pages in, fill the per-thread buffers
            for name in names:
                sides[name](q[0], k)
        for i, v in enumerate(q):
            names.reverse()
            for name in names:
                c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
                items, _ = sides[name](v, k)
                w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                wall[name].append((w1 - w0) / 1e3)
                cpu[name].append((c1 - c0) / 1e3)
                recall[name].append(_recall(items.astype(np.int64), exact_k[i]))
        for name in sides:
            rows.append(
                {
                    "k": k,
                    "search": name,
                    "recall@k": round(float(np.mean(recall[name])), 4),
                    "us_median": round(float(np.median(wall[name])), 1),
                    "us_p99": round(float(np.percentile(wall[name], 99)), 1),
                    "cpu_us_median": round(float(np.median(cpu[name])), 1),
                }
            )
    return {
        "bundle": str(bundle_dir),
        "items": len(item_emb),
        "queries": queries,
        "hnsw": {"expansion_search": hnsw.expansion_search, "dtype": hnsw.dtype, "connectivity": hnsw.connectivity},
        "ivf": {"nlist": index.nlist, "rescore": rescore, "from_bundle": has_ivf, "build_s": round(build_s, 1)},
        "rows": rows,
        "method": "one thread, single-query calls, sides interleaved per query (order alternating), 2 warm-up calls",
        "machine": {**conditions, "load_avg_end": load_average()},
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| k | search | recall@k | us median | us p99 | CPU us median |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        cells = (r["k"], r["search"], f"{r['recall@k']:.4f}", r["us_median"], r["us_p99"], r["cpu_us_median"])
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m node.bench_ann", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle_dir", type=Path, help="a bundle directory, or a root with LATEST")
    parser.add_argument("--queries", type=int, default=300, help="users' embeddings used as queries")
    parser.add_argument("--k", type=int, nargs="+", default=[400, 450])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 24, 32, 48])
    parser.add_argument("--rescore", type=float, default=ivf.RESCORE, help="approximate hits re-scored per hit")
    parser.add_argument("--nlist", type=int, default=0, help="lists when the bundle has no IVF files (0: the rule)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.bundle_dir, args.queries, args.k, args.nprobe, args.rescore, args.nlist, args.seed)
    print(json.dumps(result, indent=2) if args.json else _table(result))


if __name__ == "__main__":
    main()
