"""Loading one bundle into memory, verified, for serving.

A :class:`LoadedBundle` is immutable once loaded. Loading checks every file's
sha256 (or a matching marker that the region's replicator verified them, see
:mod:`replicator.verified`), the feature schema, and the shapes of the arrays
against the manifest; :meth:`LoadedBundle.warm_up` then checks that this node
reproduces the scores the trainer recorded in ``golden.json``. A bundle that
fails any check raises :class:`trainer.bundle.BundleError` and is never served.

A node loads a new bundle inside its serving process, beside the bundle it
serves, so no step of the load may hold the GIL for long: every request thread
would wait for it. The arrays are memory-mapped (read-only, shared with the
page cache and with every other version and process that maps them; the hot
path's packed item table too: :meth:`hotpath.Assembler.open` maps
``item_rows.npy`` instead of copying the item arrays into each process, and
the item embeddings, dense features and genres are views of it; and the IVF
index: :meth:`hotpath.IvfIndex.open` maps its ``ivf_*.npy`` files), the id
lookups are binary searches through the ids' sorted order (:class:`IdIndex`:
the order the trainer stored, checked by vectorised comparisons, which run
without the GIL, instead of a million-entry dict built with it or a sort at
every load), the titles are read only when asked for (they are not on the
Rank path), and what is left holds the GIL for at most a few milliseconds at
a time at 1M items. The bulk steps run below the request threads in CPU
priority, on threads of the Rust core's own that never take the GIL
(:func:`_core_at_low_priority`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, TypeVar, overload

import numpy as np
import onnxruntime as ort

import hotpath
from hotpath.item_rows import item_columns
from node.prefault import prefault, release
from replicator import verified
from trainer import bundle as bundle_format
from trainer import features as feature_defs
from trainer.artifacts import view_index
from trainer.bundle import BundleError
from trainer.candidates import CandidateGenerator, ann_search, rank_scores
from trainer.ivf import NPROBE, ivf_search
from trainer.ranker_io import ranker_session

log = logging.getLogger(__name__)

# The largest difference allowed between a golden score and the node's score.
GOLDEN_ATOL = 1e-3
# Between the golden requests of a warm-up (and the pipeline's, node.pipeline): the GIL and a core free meanwhile.
WARM_UP_PAUSE_S = 0.001
_EMPTY_LIST = np.empty(0, np.uint32)
CONTEXT_DIM = len(feature_defs.CONTEXT)
CROSS_DIM = len(feature_defs.CROSS)


# Added to the niceness of the threads that do a load's bulk work: the hot path's (mapping and checking the index and
# tables, faulting them in) and numpy's (the content checks of a bundle no replicator vouched for).
LOAD_NICENESS = 10
T = TypeVar("T")

# The checks of what a bundle's arrays hold (their shapes and dtypes are always checked: that reads no data). Each
# reads a whole array: 60 to 140 ms of CPU at 1M items. The region's replicator runs them once per version
# (check_contents) and names them in its marker (replicator.verified); a node loading a bundle that marker vouches
# for skips them, as it skips the sha256 pass.
CHECK_ID_ORDER = "id-order"  # the item and the user ids unique, and sorted by their stored order
CHECK_SEEN_ROWS = "seen-rows"  # user_seen_indptr a CSR row pointer over user_seen_items, whose items are in the catalog
CHECK_ITEM_TIMES = "item-times"  # no item's first_ts in item_rows.npy is NaN
CONTENT_CHECKS = (CHECK_ID_ORDER, CHECK_SEEN_ROWS, CHECK_ITEM_TIMES)


def _low_priority(fn: Callable[[], T]) -> T:
    """``fn()`` in a short-lived thread at a lower CPU priority (on Linux, niceness is per thread).

    For numpy's bulk work (the content checks of a bundle no replicator vouched for: argsort, the seen rows'
    scans), which releases the GIL but takes it back between its calls, at the low priority: on busy cores the
    request threads that gave it up may wait for this thread to run (a priority inversion, see
    :func:`_core_at_low_priority`). The hot path's own calls do not need this thread.
    """
    out: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + LOAD_NICENESS))
        except (OSError, AttributeError) as e:  # not Linux, or not allowed: run at the caller's priority
            log.debug("bundle load runs at the caller's priority: %s: %s", type(e).__name__, e)
        try:
            out.append(fn())
        except BaseException as e:  # re-raised in the caller
            error.append(e)

    thread = threading.Thread(target=run, name="bundle-load", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return out[0]


@contextmanager
def _core_at_low_priority() -> Iterator[None]:
    """The hot path's work in the block (mapping the index and building its key table, mapping and checking
    the tables, faulting the bundle in) runs at ``LOAD_NICENESS`` below the calling thread, on threads of the
    Rust core's own that never take the GIL (:func:`hotpath.bulk_niceness`); the calling thread waits at its
    own priority and is the one that takes the GIL back.

    A Python thread that lowered its own priority for such a call took the GIL back at the low priority,
    and CPython's forced switching then held the request thread that had it until the low-priority thread
    ran, which on busy cores can be tens of ms (BENCHMARKS.md, replication, session (17)).
    """
    previous = hotpath.bulk_niceness(LOAD_NICENESS)
    try:
        yield
    finally:
        hotpath.bulk_niceness(previous)


def _map(path: Path) -> np.ndarray:
    """A bundle array memory-mapped read-only (an empty one, which cannot be mapped, read)."""
    try:
        a = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError:  # an empty array cannot be mapped
        a = np.load(path, allow_pickle=False)
    # A plain ndarray view of the map (a copy only if the file were Fortran-ordered; the trainer writes C).
    return np.ascontiguousarray(a)


def _check_seen_rows(indptr: np.ndarray, seen: np.ndarray, n_items: int, fail: Callable[[str], BundleError]) -> None:
    """:data:`CHECK_SEEN_ROWS`."""
    if len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != len(seen) or np.any(indptr[1:] < indptr[:-1]):
        raise fail("user_seen_indptr is not a valid CSR row pointer for user_seen_items")
    if len(seen) and int(seen.max()) >= n_items:
        raise fail("user_seen_items refers to items outside the catalog")


def check_contents(bundle_dir: Path, manifest: dict[str, Any]) -> tuple[str, ...]:
    """Run every content check (:data:`CONTENT_CHECKS`) on the arrays of a bundle whose files are verified; the
    checks passed. Raises :class:`BundleError` naming the bundle and the reason.

    For the region's replicator, before it installs a version and names the checks in its marker: the nodes
    that load the version then skip them (:meth:`LoadedBundle.load`). Reads every array it checks (about
    0.1 s of CPU at 1M items and users, from the page cache the fetch just filled).
    """

    def fail(what: str) -> BundleError:
        return BundleError(f"{bundle_dir}: {what}")

    try:
        genres = list(manifest["genres"])
        dim, g = int(manifest["embedding_dim"]), len(genres)
        item_ids = _map(bundle_dir / "item_ids.npy")
        IdIndex(item_ids, "item ids", _map(bundle_dir / "item_id_order.npy"))
        IdIndex(_map(bundle_dir / "user_ids.npy"), "user ids", _map(bundle_dir / "user_id_order.npy"))
        indptr, seen = _map(bundle_dir / "user_seen_indptr.npy"), _map(bundle_dir / "user_seen_items.npy")
        if indptr.ndim != 1 or seen.ndim != 1 or indptr.dtype.kind not in "iu" or seen.dtype.kind not in "iu":
            raise fail(f"user_seen_indptr {indptr.dtype} {indptr.shape} and user_seen_items {seen.dtype} "
                       f"{seen.shape} must be 1-d integer arrays")  # fmt: skip
        _check_seen_rows(indptr, seen, len(item_ids), fail)
        hotpath.Assembler.open(bundle_dir / "item_rows.npy", dim, g, feature_defs.item_dim(g))
    except hotpath.ItemRowsError as e:
        raise BundleError(f"cannot map the item table: {e}") from e
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise fail(f"cannot check the contents: {type(e).__name__}: {e}") from e
    return CONTENT_CHECKS


class IdIndex(Mapping[str, int]):
    """id -> row of a str array, as a read-only mapping: a binary search over the ids in sorted order.

    The order is the bundle's (``item_id_order.npy``, ``user_id_order.npy``: the trainer's stable argsort),
    checked here unless ``checked`` says it was on these files before (:data:`CHECK_ID_ORDER`), or else an
    ``argsort`` of the ids. The lookups search the ids through the order (numpy's
    ``searchsorted`` with a ``sorter``): no sorted copy of the ids (44 MB at 1M ids of 11 characters), and
    with a stored int64 order, nothing of the process's own. Built without holding the GIL for long
    (``argsort``, and the check's fancy indexing and comparisons of a str array, a block of ids at a time,
    release it), unlike a dict, whose million inserts hold it for tens of milliseconds at a time; a lookup
    costs about 1.5 us instead of 0.1 us, and a request makes a handful. Ids must be unique.
    """

    # Ids gathered in sorted order per block of the check.
    CHECK_BLOCK = 1 << 16

    def __init__(self, ids: np.ndarray, what: str = "ids", order: np.ndarray | None = None, checked: bool = False):
        if ids.ndim != 1 or ids.dtype.kind != "U":
            raise BundleError(f"{what} must be a 1-d str array, not {ids.dtype} {ids.shape}")
        self._ids = ids
        # numpy's searchsorted casts the whole array to a key's wider dtype (a copy of every id, about
        # 20 ms with the GIL held at 1M ids): a key longer than the longest id is never looked up.
        self._width = ids.dtype.itemsize // np.dtype("U1").itemsize
        if order is None:
            self._rows = np.argsort(ids, kind="stable")
        else:
            if order.shape != ids.shape or order.dtype.kind not in "iu":
                raise BundleError(
                    f"{what}: the stored order is {order.dtype} {order.shape}, not {len(ids)} row numbers"
                )
            if not checked and len(order) and (int(order.min()) < 0 or int(order.max()) >= len(ids)):
                raise BundleError(f"{what}: the stored order has row numbers outside [0, {len(ids)})")
            # searchsorted converts any other sorter to intp at every call (a copy of the whole order).
            self._rows = order.astype(np.intp, copy=False)
        if not (checked and order is not None):  # checked: CHECK_ID_ORDER passed on these very files before
            self._check(what, stored=order is not None)

    def _check(self, what: str, stored: bool) -> None:
        """The ids in this order are strictly increasing: sorted and unique, so that (with the bounds checked)
        the order is a permutation. Block by block, so that no copy of all the ids is made."""
        ids, rows, block = self._ids, self._rows, self.CHECK_BLOCK
        for start in range(0, len(ids) - 1, block):
            ordered = ids[rows[start : start + block + 1]]
            if not bool(np.all(ordered[1:] > ordered[:-1])):
                self._refuse(what, stored, ordered, rows[start : start + block + 1])

    @staticmethod
    def _refuse(what: str, stored: bool, ordered: np.ndarray, rows: np.ndarray) -> NoReturn:
        """Why ``ordered`` (the ids of ``rows``) are not strictly increasing (off the common path)."""
        after, before = ordered[1:], ordered[:-1]
        if stored and bool(np.any(after < before)):
            i = int(np.argmax(after < before))
            raise BundleError(
                f"{what}: the stored order does not sort them ({str(before[i])!r} at row {int(rows[i])} "
                f"before {str(after[i])!r} at row {int(rows[i + 1])})"
            )
        i = int(np.argmax(after == before))
        if stored and rows[i] == rows[i + 1]:
            raise BundleError(f"{what}: the stored order is not a permutation (row {int(rows[i])} twice)")
        raise BundleError(f"{what} are not unique: {str(after[i])!r} appears more than once")

    def _find(self, key: object) -> int:
        if not isinstance(key, str) or len(key) > self._width:
            return -1
        ids, rows = self._ids, self._rows
        i = int(ids.searchsorted(key, sorter=rows))
        if i < len(ids) and ids[rows[i]] == key:
            return int(rows[i])
        return -1

    @overload
    def get(self, key: str, /) -> int | None: ...
    @overload
    def get(self, key: str, default: int, /) -> int: ...
    @overload
    def get(self, key: str, default: Any, /) -> Any: ...
    def get(self, key: str, default: Any = None, /) -> Any:
        row = self._find(key)
        return default if row < 0 else row

    def __getitem__(self, key: str) -> int:
        row = self._find(key)
        if row < 0:
            raise KeyError(key)
        return row

    def __contains__(self, key: object) -> bool:
        return self._find(key) >= 0

    def __iter__(self) -> Iterator[str]:
        return (str(x) for x in self._ids)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True, eq=False)
class LoadedBundle:
    path: Path
    manifest: dict[str, Any]
    version: str
    model_version: str
    genres: list[str]
    embedding_dim: int
    surfaces: dict[str, str]  # surface -> popularity list name
    item_ids: np.ndarray  # str [n_items]
    item_index: IdIndex
    # The item arrays: strided views of the mapped item_rows.npy (hotpath.item_rows), no copies.
    item_emb: np.ndarray  # f32 [n_items, D]
    item_dense: np.ndarray  # f32 [n_items, 5 + G]
    item_genre: np.ndarray  # f32 [n_items, G]
    user_ids: np.ndarray  # str [n_users]
    user_index: IdIndex
    user_dense: np.ndarray
    user_emb: np.ndarray
    user_last_ts: np.ndarray
    user_seen_indptr: np.ndarray
    user_seen_items: np.ndarray
    popularity: dict[str, np.ndarray]  # list name -> u32 item indices, best first
    popularity_scores: dict[str, np.ndarray]  # list name -> f32 rank-based scores
    golden: list[dict[str, Any]]
    index: hotpath.AnnIndex  # usearch: the session neighbours (item to item)
    ivf: hotpath.IvfIndex  # the user retrieval
    session: ort.InferenceSession
    assembler: Any  # hotpath.Assembler
    candidates: CandidateGenerator  # ANN, session, trending, fresh; blended in Rust
    reranker: Any  # hotpath.Reranker
    load_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step of the load

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def titles(self) -> list[str]:
        """The items' titles, for people (read on first use: they are not on the Rank path)."""
        titles = json.loads((self.path / "item_titles.json").read_text())
        if len(titles) != self.n_items:
            raise BundleError(f"{self.path}: item_titles.json has {len(titles)} titles for {self.n_items} items")
        return [str(t) for t in titles]

    @property
    def n_features(self) -> int:
        return len(self.manifest["feature_names"])

    @classmethod
    def load(cls, path: Path, trust_marker: bool = True, nprobe: int = NPROBE, lock: bool = False) -> LoadedBundle:
        """Resolve, verify and load a bundle (a bundle dir or a root with LATEST); the user retrieval scans
        ``nprobe`` lists of the IVF index (``Settings.ivf_nprobe``). With ``lock`` (``Settings.lock_bundle``)
        the mapped files are locked in memory while the bundle is loaded (:mod:`node.prefault`).

        With ``trust_marker`` (the default), a bundle that the region's
        replicator verified (:func:`replicator.verified.check`: its marker matches
        the manifest and every file's inode, size and change times) is not
        hashed again, nor are the content checks the marker names run again
        (:func:`check_contents`); any other bundle has every file's sha256 and
        its contents checked.
        """
        t0 = time.perf_counter()
        bundle_dir = bundle_format.resolve(Path(path))
        manifest = bundle_format.read_manifest(bundle_dir)
        why = verified.check(bundle_dir, manifest) if trust_marker else "not asked to trust a marker"
        checked: frozenset[str] = frozenset()
        if why is None:
            how = "replicator's marker"
            bundle_format.verify_names(bundle_dir, manifest)
            checked = verified.checked(bundle_dir) & frozenset(CONTENT_CHECKS)
        else:
            how = "sha256"
            bundle_format.verify_files(bundle_dir, manifest)
        seconds = {"verify": time.perf_counter() - t0}
        try:
            bundle = cls._load_verified(bundle_dir, manifest, seconds, nprobe, lock, checked)
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, OSError, RuntimeError) as e:
            raise BundleError(f"{bundle_dir}: cannot load: {type(e).__name__}: {e}") from e
        log.info(
            "loaded bundle %s in %.2f s (verified by %s%s; content checks %s): %s",
            bundle.version, time.perf_counter() - t0, how, "" if why is None else f": {why}",
            "by the replicator" if checked == frozenset(CONTENT_CHECKS)
            else "here" if not checked else f"here but {', '.join(sorted(checked))}",
            ", ".join(f"{k} {v:.3f}" for k, v in seconds.items()),
        )  # fmt: skip
        return bundle

    @classmethod
    def _load_verified(
        cls,
        bundle_dir: Path,
        manifest: dict[str, Any],
        seconds: dict[str, float],
        nprobe: int,
        lock: bool,
        checked: frozenset[str] = frozenset(),
    ) -> LoadedBundle:
        t = time.perf_counter()

        def step(name: str) -> None:
            nonlocal t
            now = time.perf_counter()
            seconds[name] = round(now - t, 4)
            t = now

        def fail(what: str) -> BundleError:
            return BundleError(f"{bundle_dir}: {what}")

        genres = list(manifest["genres"])
        dim = int(manifest["embedding_dim"])
        g = len(genres)
        expected_hash = feature_defs.schema_hash(genres, dim)
        if manifest.get("feature_schema_hash") != expected_hash:
            raise fail(
                f"feature_schema_hash {manifest.get('feature_schema_hash')!r} is not this node's {expected_hash!r}"
            )
        if list(manifest["feature_names"]) != feature_defs.feature_names(genres):
            raise fail("feature_names differ from this node's feature definitions")

        def npy(name: str, dtype: Any, shape: tuple[int | None, ...]) -> np.ndarray:
            # Memory-mapped, read-only: no copy with the GIL held, pages shared with the page cache (the
            # replicator just wrote them) and with every process and version that maps the same file.
            a = mapped(name)
            if dtype is not None and a.dtype != np.dtype(dtype):
                raise fail(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype)}")
            if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=False)):
                raise fail(f"{name} has shape {a.shape}, expected {shape}")
            return a

        def mapped(name: str) -> np.ndarray:
            return _map(bundle_dir / name)

        item_ids = mapped("item_ids.npy")
        n = len(item_ids)
        item_order = npy("item_id_order.npy", None, (n,))  # dtype checked by IdIndex
        # The item arrays the node reads are the packed rows of item_rows.npy (checked by the assembler
        # below); item_first_ts.npy is not mapped.
        item_primary = npy("item_primary_genre.npy", np.uint16, (n,))
        user_ids = mapped("user_ids.npy")
        u = len(user_ids)
        user_order = npy("user_id_order.npy", None, (u,))
        user_dense = npy("user_dense.npy", np.float32, (u, feature_defs.user_dim(g)))
        user_emb = npy("user_emb.npy", np.float32, (u, dim))
        user_last_ts = npy("user_last_ts.npy", np.float64, (u,))
        indptr = npy("user_seen_indptr.npy", np.int64, (u + 1,))
        seen = npy("user_seen_items.npy", np.uint32, (None,))
        counts = manifest.get("counts") or {}
        for key, actual in (("items", n), ("users", u)):
            if key in counts and int(counts[key]) != actual:
                raise fail(f"manifest counts {key}={counts[key]}, the arrays have {actual}")
        step("arrays")

        def bulk() -> tuple[IdIndex, IdIndex]:
            # Scans of the mapped pages (80 MB of seen items at 1M users) with the GIL released: at normal
            # priority, two nodes loading at once took both cores from their request threads for tens of ms.
            if CHECK_SEEN_ROWS not in checked:
                _check_seen_rows(indptr, seen, n, fail)
            ids_checked = CHECK_ID_ORDER in checked
            return (
                IdIndex(item_ids, "item ids", item_order, checked=ids_checked),
                IdIndex(user_ids, "user ids", user_order, checked=ids_checked),
            )

        item_index, user_index = _low_priority(bulk)
        step("ids")

        lists = json.loads((bundle_dir / "popularity.json").read_text())["lists"]
        popularity = {name: np.asarray(v, dtype=np.int64) for name, v in lists.items()}
        for name, arr in popularity.items():
            if len(arr) and (arr.min() < 0 or arr.max() >= n):
                raise fail(f"popularity list {name!r} refers to items outside the catalog")
        popularity = {name: arr.astype(np.uint32) for name, arr in popularity.items()}
        surfaces = dict(manifest["surfaces"])
        for surface, list_name in surfaces.items():
            if list_name not in popularity:
                raise fail(f"surface {surface!r} names a missing popularity list {list_name!r}")
        golden = json.loads((bundle_dir / "golden.json").read_text())
        step("lists")

        # Memory-mapped by the Rust core with the GIL released (the usearch wheel's Index.view holds it for 35
        # to 140 ms at 1M items, a stall of every request thread), at low priority: mapping and its key table.
        with _core_at_low_priority():
            index = view_index(bundle_dir / "index.usearch", manifest["index"], dim, n)
        step("index")
        session = ranker_session(bundle_dir / "ranker.onnx")
        step("ranker")
        rows_path = bundle_dir / "item_rows.npy"
        try:
            # Mapped and checked (header, stride, alignment, length, NaN times) with the GIL released: no copy.
            with _core_at_low_priority():
                assembler = hotpath.Assembler.open(
                    rows_path, dim, g, feature_defs.item_dim(g), check_times=CHECK_ITEM_TIMES not in checked
                )
                reranker = hotpath.Reranker(item_primary)
        except hotpath.ItemRowsError as e:
            raise BundleError(f"cannot map the item table: {e}") from e
        if assembler.n_items != n:
            raise fail(f"item_rows.npy has {assembler.n_items} rows for {n} items")
        # The item arrays as views of the packed rows (numpy's own map of the same file: the same page-cache
        # pages as the assembler's).
        items = item_columns(mapped("item_rows.npy"), dim, g, feature_defs.item_dim(g))
        step("tables")
        # The ivf_*.npy files mapped by the Rust core and checked off the GIL (no copy: page cache shared with
        # every process and version, locked with the rest below): the lists must be of these embeddings, of
        # their dimension and every item once. The re-score reads the embeddings from the mapped item rows
        # (their first `dim` floats).
        try:
            with _core_at_low_priority():
                ivf = hotpath.IvfIndex.open(bundle_dir, items.rows, dim)
        except hotpath.IvfIndexError as e:
            raise BundleError(f"cannot map the IVF index: {e}") from e
        step("ivf")
        # The mapped files' pages faulted in now, not by the first requests on this version.
        with _core_at_low_priority():
            prefault(bundle_dir, lock)
        step("prefault")

        return cls(
            path=bundle_dir,
            manifest=manifest,
            version=str(manifest["version"]),
            model_version=str(manifest.get("model_version", "")),
            genres=genres,
            embedding_dim=dim,
            surfaces=surfaces,
            item_ids=item_ids,
            item_index=item_index,
            item_emb=items.emb,
            item_dense=items.dense,
            item_genre=items.genre,
            user_ids=user_ids,
            user_index=user_index,
            user_dense=user_dense,
            user_emb=user_emb,
            user_last_ts=user_last_ts,
            user_seen_indptr=indptr,
            user_seen_items=seen,
            popularity=popularity,
            popularity_scores={name: rank_scores(len(a)) for name, a in popularity.items()},
            golden=list(golden),
            index=index,
            ivf=ivf,
            session=session,
            assembler=assembler,
            # Searched with the GIL released, by any number of request threads at once.
            candidates=CandidateGenerator(
                ivf_search(ivf, nprobe),
                ann_search(index),
                items.emb,
                popularity.get("trending", _EMPTY_LIST),
                popularity.get("fresh", _EMPTY_LIST),
            ),
            reranker=reranker,
            load_seconds=seconds,
        )

    def release(self) -> None:
        """Before the last reference to this bundle goes: unlock and unmap its pages a piece at a time, at
        low priority (:func:`node.prefault.release`), so that the final ``munmap`` of each file is quick.
        Requests still running on it read on (they fault in what they touch)."""
        with _core_at_low_priority():
            release(self.path)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items to ``vector``: (item indices u32, scores f32 = 1 - distance)."""
        return self.candidates.search(vector, k)

    def score(self, matrix: np.ndarray, run_options: ort.RunOptions | None = None) -> np.ndarray:
        """The ranker's scores for a feature matrix f32 [N, F] -> f32 [N]; ``run_options`` can cancel it."""
        (out,) = self.session.run(["score"], {"features": matrix}, run_options)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def warm_up(self) -> None:
        """Score every golden request and compare with the trainer's scores.

        Exercises the assembler, the ranker and the index once, so that the
        first real request does not pay for lazy initialisation, and refuses a
        bundle whose scores this node cannot reproduce.
        """
        for i, case in enumerate(self.golden):
            items = np.array([self.item_index[str(x)] for x in case["items"]], dtype=np.uint32)
            row = self.user_index.get(str(case["user_id"]))
            if row is None:
                g, d = len(self.genres), self.embedding_dim
                dense, emb, last = (
                    np.zeros(feature_defs.user_dim(g), np.float32),
                    np.zeros(d, np.float32),
                    -1.0,
                )
            else:
                dense, emb, last = (
                    self.user_dense[row],
                    self.user_emb[row],
                    float(self.user_last_ts[row]),
                )
            now = float(case["now_ts"])
            genre = feature_defs.user_genre(dense, len(self.genres))
            matrix = self.assembler.assemble(dense, emb, genre, last, now, feature_defs.context_vector(now), items)
            if matrix.shape != (len(items), self.n_features):
                raise BundleError(f"{self.path}: assembled {matrix.shape}, expected ({len(items)}, {self.n_features})")
            scores = self.score(matrix)
            expected = np.asarray(case["scores"], dtype=np.float32)
            worst = float(np.max(np.abs(scores - expected))) if len(items) else 0.0
            if not worst <= GOLDEN_ATOL:
                raise BundleError(
                    f"{self.path}: golden request {i} (user {case['user_id']}) scores differ from the trainer's "
                    f"by up to {worst:.3g} (allowed {GOLDEN_ATOL})"
                )
            self.search(emb, 10)
            time.sleep(WARM_UP_PAUSE_S)  # the serving thread's turn (a load runs beside it on shared cores)
        log.info(
            "bundle %s warmed up with %d golden requests",
            self.version,
            len(self.golden),
        )
