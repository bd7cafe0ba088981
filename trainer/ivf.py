"""The IVF index of the item embeddings: the user retrieval's deep search.

Spherical k-means on a sample of the unit-norm item embeddings gives ``nlist``
centroids; every item goes to the list of its best centroid (inner product);
the items' embeddings are stored list after list as 8-bit codes with one
scale per dimension. :class:`hotpath.IvfIndex` scans the ``nprobe`` best lists
with the codes, re-scores the best approximate hits exactly with ``item_emb``
and returns the best ``k``. Its cost barely grows with ``k``, where usearch's
graph search expands at least ``k`` nodes: at 1M items and k = 420 it costs
a fraction of the graph search (BENCHMARKS.md, "IVF").

Bundle files (:data:`FILES`): ``ivf_centroids.npy`` f32 [nlist, D],
``ivf_offsets.npy`` u32 [nlist + 1], ``ivf_items.npy`` u32 [n_items] (item
rows, list after list), ``ivf_codes.npy`` i8 [n_items, D] (in that order),
``ivf_scale.npy`` f32 [D]. A node maps them read-only
(:meth:`hotpath.IvfIndex.open`, which reads these names); :meth:`Ivf.index`
copies the arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import hotpath
from trainer.candidates import Search

FILES = ("ivf_centroids.npy", "ivf_offsets.npy", "ivf_items.npy", "ivf_codes.npy", "ivf_scale.npy")

# Search defaults, chosen on the 1M-item synthetic bundle (BENCHMARKS.md, "IVF"): the fewest lists that
# match the graph search's recall at k = 420, and the approximate hits re-scored exactly per hit asked for.
NPROBE = 40
RESCORE = 2.0

# Rows scored against the centroids at once (a chunk's score matrix is chunk x nlist floats).
_CHUNK = 8192


@dataclass(frozen=True)
class IvfConfig:
    """``nlist`` 0 picks :func:`nlist_for` the catalog."""

    nlist: int = 0
    sample_per_list: int = 64
    iterations: int = 12
    seed: int = 0


@dataclass(frozen=True)
class Ivf:
    centroids: np.ndarray  # f32 [nlist, D], unit norm
    offsets: np.ndarray  # u32 [nlist + 1]
    items: np.ndarray  # u32 [n_items], list after list
    codes: np.ndarray  # i8 [n_items, D], rows of ``items``
    scale: np.ndarray  # f32 [D]

    def arrays(self) -> dict[str, np.ndarray]:
        """The bundle files' names and contents."""
        return dict(zip(FILES, (self.centroids, self.offsets, self.items, self.codes, self.scale), strict=True))

    def index(self, item_emb: np.ndarray) -> hotpath.IvfIndex:
        """The searchable index; ``item_emb`` (the embeddings it was built from) is kept for the re-score."""
        return hotpath.IvfIndex(self.centroids, self.offsets, self.items, self.codes, self.scale, item_emb)


def nlist_for(n_items: int) -> int:
    """About 2 sqrt(n) lists (2,000 at 1M items), of 256 items at least: a small catalog (MovieLens's 9.7K
    items: 38 lists) is searched almost whole at the default nprobe, as the pool is a large share of it."""
    return max(1, min(round(2 * math.sqrt(n_items)), n_items // 256))


def load(bundle_dir: Path, mmap: bool = True) -> Ivf:
    """A bundle's IVF files, memory-mapped read-only by default."""
    arrays = [np.load(bundle_dir / name, mmap_mode="r" if mmap else None, allow_pickle=False) for name in FILES]
    return Ivf(*arrays)


def build_ivf(item_emb: np.ndarray, config: IvfConfig | None = None, *, progress: bool = False) -> Ivf:
    """k-means lists of ``item_emb`` (unit-norm rows) and their codes; ``progress`` shows the iterations."""
    config = config or IvfConfig()
    emb = np.ascontiguousarray(item_emb, dtype=np.float32)
    n = len(emb)
    nlist = config.nlist or nlist_for(n)
    if not 1 <= nlist <= n:
        raise ValueError(f"nlist must be in [1, {n}] (the items), got {nlist}")
    rng = np.random.default_rng(config.seed)
    sample = emb[np.sort(rng.choice(n, min(n, nlist * config.sample_per_list), replace=False))]
    centroids = _kmeans(sample, nlist, config.iterations, rng, progress)
    assign = _assign(emb, centroids, progress, "ivf assign")
    items = np.argsort(assign, kind="stable").astype(np.uint32)
    offsets = np.zeros(nlist + 1, dtype=np.uint32)
    np.cumsum(np.bincount(assign, minlength=nlist), out=offsets[1:])
    scale, codes = quantize(emb[items])
    return Ivf(centroids, offsets, items, codes, scale)


def quantize(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale f32 [D], codes i8 [n, D]): ``codes * scale`` approximates ``rows``, per dimension to 1/254 of
    its largest magnitude."""
    top = np.abs(rows).max(axis=0) if len(rows) else np.zeros(rows.shape[1], np.float32)
    scale = (top / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    codes = np.clip(np.rint(rows / safe), -127, 127).astype(np.int8)
    return scale, codes


def _kmeans(sample: np.ndarray, nlist: int, iterations: int, rng: np.random.Generator, progress: bool) -> np.ndarray:
    """Spherical k-means: unit-norm centroids, points to the centroid of the largest dot product."""
    centroids = sample[rng.choice(len(sample), nlist, replace=False)].copy()
    for _ in tqdm(range(iterations), desc="ivf k-means", unit="iter", leave=False, disable=not progress):
        assign = _assign(sample, centroids, False, "")
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, sample)
        norms = np.linalg.norm(sums, axis=1)
        empty = norms == 0
        # A list that lost every point restarts from a random sample point.
        sums[empty] = sample[rng.choice(len(sample), int(empty.sum()), replace=False)]
        norms[empty] = np.linalg.norm(sums[empty], axis=1)
        centroids = (sums / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
    return centroids


def _assign(rows: np.ndarray, centroids: np.ndarray, progress: bool, desc: str) -> np.ndarray:
    """The best centroid of every row (i64), in chunks of :data:`_CHUNK` rows."""
    out = np.empty(len(rows), dtype=np.int64)
    starts = range(0, len(rows), _CHUNK)
    for start in tqdm(starts, desc=desc, unit="chunk", leave=False, disable=not progress):
        out[start : start + _CHUNK] = np.argmax(rows[start : start + _CHUNK] @ centroids.T, axis=1)
    return out


def ivf_search(index: hotpath.IvfIndex, nprobe: int = NPROBE, rescore: float = RESCORE) -> Search:
    """``search(vector, k) -> (items u32, scores f32)`` (exact dot products, best first), as
    :func:`trainer.candidates.ann_search`, over the IVF index: ``nprobe`` lists, ``ceil(rescore * k)``
    approximate hits re-scored exactly."""

    def search(vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(int(k), 0)
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        return index.search(vector, k, nprobe=nprobe, rescore=math.ceil(rescore * k))

    return search
