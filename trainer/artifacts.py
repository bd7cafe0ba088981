"""Everything a bundle serves, built in memory from one set of interactions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from usearch.index import Index

import hotpath
from trainer.bundle import BundleError
from trainer.candidates import CandidateGenerator, index_search
from trainer.data import Catalog, Interactions
from trainer.embeddings import EmbeddingConfig, fit_item_embeddings
from trainer.features import item_features
from trainer.ivf import Ivf, build_ivf, ivf_search
from trainer.ivf import load as load_ivf
from trainer.popularity import popularity_lists
from trainer.rows import ItemTables


@dataclass(frozen=True)
class IndexConfig:
    metric: str = "ip"
    dtype: str = "f16"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Artifacts:
    items: ItemTables
    index: Index  # usearch: the session neighbours
    ivf: Ivf  # the user retrieval, searched as the node does (trainer.ivf defaults)
    lists: dict[str, np.ndarray]
    as_of: float

    def generator(self) -> CandidateGenerator:
        emb = self.items.emb
        search = ivf_search(self.ivf.index(self.items.vectors))
        return CandidateGenerator(search, index_search(self.index), emb, self.lists["trending"], self.lists["fresh"])


def build_index(item_emb: np.ndarray, config: IndexConfig, *, progress: bool = False) -> Index:
    """The usearch index of ``item_emb`` (keys are row numbers); ``progress`` shows a bar per item added."""
    index = Index(
        ndim=item_emb.shape[1],
        metric=config.metric,
        dtype=config.dtype,
        connectivity=config.connectivity,
        expansion_add=config.expansion_add,
        expansion_search=config.expansion_search,
    )
    # One thread keeps the graph, and so the candidates, reproducible; large catalogs use both cores.
    threads = 1 if len(item_emb) <= 200_000 else 2
    keys = np.arange(len(item_emb), dtype=np.uint64)
    if not progress:
        index.add(keys, item_emb, threads=threads)
        return index
    with tqdm(total=len(item_emb), desc="index", unit="item", unit_scale=True, leave=False) as bar:

        def advance(done: int, total: int) -> bool:
            bar.update(done - bar.n)
            return True

        # usearch checks the callback's annotations, which this module's future import turns into strings.
        advance.__annotations__ = {"done": int, "total": int, "return": bool}
        index.add(keys, item_emb, threads=threads, progress=advance)
    return index


def primary_genre(item_genre: np.ndarray) -> np.ndarray:
    """u16 [n_items]: the first genre column set, or G when an item has none."""
    has = item_genre.any(axis=1)
    first = item_genre.argmax(axis=1)
    return np.where(has, first, item_genre.shape[1]).astype(np.uint16)


def build_artifacts(
    data: Interactions,
    catalog: Catalog,
    item_genre: np.ndarray,
    emb_config: EmbeddingConfig,
    index_config: IndexConfig,
) -> Artifacts:
    as_of = float(data.timestamp.max())
    emb = fit_item_embeddings(data, catalog, item_genre, emb_config)
    dense, first_ts = item_features(
        len(catalog), data.item, data.value, data.positive, data.timestamp, item_genre, catalog.years, as_of
    )
    tables = ItemTables(dense, emb, item_genre, first_ts, primary_genre(item_genre))
    lists = popularity_lists(data, len(catalog), as_of)
    return Artifacts(tables, build_index(emb, index_config), build_ivf(emb), lists, as_of)


def restore_index(path: Path, spec: dict[str, Any], dim: int, n_items: int) -> Index:
    """Load a bundle's usearch index into memory (the trainer's tools) and check it as :func:`view_index` does."""
    meta = Index.metadata(str(path))
    if not meta:
        raise BundleError(f"{path} is not a usearch index")
    index = Index(ndim=meta["dimensions"], dtype=meta["kind_scalar"], metric=meta["kind_metric"])
    index.load(str(path))
    metric = str(getattr(index.metric, "name", index.metric)).lower()
    _check_index(path, spec, dim, n_items, index.ndim, len(index), metric)
    if "expansion_search" in spec:
        setattr(index, "expansion_search", int(spec["expansion_search"]))  # noqa: B010 - a setter mypy cannot see
    return index


def view_index(path: Path, spec: dict[str, Any], dim: int, n_items: int) -> hotpath.AnnIndex:
    """Map a bundle's usearch index for serving and check it against the manifest and the embeddings.

    :class:`hotpath.AnnIndex` maps the file read-only (pages shared with the page cache, with the
    other versions and processes that map it) with the GIL released, and searches without it from
    any number of threads: the Python wheel's ``Index.view`` holds the GIL for the whole call (35 to
    140 ms at 1M items), which stalls every request thread of a node loading a bundle beside the one
    it serves. Same C++ core and version as the wheel, so the same results on the same file.
    """
    try:
        index = hotpath.AnnIndex.open(path)
    except hotpath.AnnIndexError as e:  # its message names the file and says why
        raise BundleError(str(e)) from e
    _check_index(path, spec, dim, n_items, index.ndim, len(index), index.metric)
    if "expansion_search" in spec:
        expansion = spec["expansion_search"]
        if not isinstance(expansion, int) or isinstance(expansion, bool) or expansion < 1:
            raise BundleError(f"{path}: manifest index.expansion_search must be an integer >= 1, got {expansion!r}")
        index.expansion_search = expansion
    return index


def _check_index(path: Path, spec: dict[str, Any], dim: int, n_items: int, ndim: int, size: int, metric: str) -> None:
    if ndim != dim:
        raise BundleError(f"{path}: index has {ndim} dimensions, the embeddings {dim}")
    if size != n_items:
        raise BundleError(f"{path}: index holds {size} vectors for {n_items} items")
    expected = str(spec.get("metric", "ip")).lower()
    if metric.lower() != expected:
        raise BundleError(f"{path}: index metric is {metric.lower()}, the manifest says {expected}")


def load_artifacts(bundle_dir: Path, manifest: dict[str, Any]) -> Artifacts:
    """The serving artifacts of a written bundle (for evaluation and tools); the item arrays are views of its
    memory-mapped item rows."""
    tables = ItemTables.open(bundle_dir, manifest)
    emb = tables.emb
    index = restore_index(bundle_dir / "index.usearch", manifest["index"], emb.shape[1], emb.shape[0])
    lists = json.loads((bundle_dir / "popularity.json").read_text())["lists"]
    return Artifacts(
        tables,
        index,
        load_ivf(bundle_dir, mmap=False),
        {k: np.asarray(v, dtype=np.uint32) for k, v in lists.items()},
        float(manifest["training"]["as_of"]),
    )
