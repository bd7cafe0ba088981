"""Loading one bundle into memory, verified, for serving.

A :class:`LoadedBundle` is immutable once loaded. Loading checks every file's
sha256, the feature schema, and the shapes of the arrays against the
manifest; :meth:`LoadedBundle.warm_up` then checks that this node reproduces
the scores the trainer recorded in ``golden.json``. A bundle that fails any
check raises :class:`trainer.bundle.BundleError` and is never served.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from usearch.index import Index

import hotpath
from trainer import bundle as bundle_format
from trainer import features as feature_defs
from trainer.artifacts import restore_index
from trainer.bundle import BundleError
from trainer.candidates import CandidateGenerator, index_search, rank_scores
from trainer.ranker_io import ranker_session

log = logging.getLogger(__name__)

# The largest difference allowed between a golden score and the node's score.
GOLDEN_ATOL = 1e-3
_EMPTY_LIST = np.empty(0, np.uint32)
CONTEXT_DIM = len(feature_defs.CONTEXT)
CROSS_DIM = len(feature_defs.CROSS)


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
    item_index: dict[str, int]
    titles: list[str]
    item_emb: np.ndarray  # f32 [n_items, D]
    user_ids: np.ndarray  # str [n_users]
    user_index: dict[str, int]
    user_dense: np.ndarray
    user_emb: np.ndarray
    user_last_ts: np.ndarray
    user_seen_indptr: np.ndarray
    user_seen_items: np.ndarray
    popularity: dict[str, np.ndarray]  # list name -> u32 item indices, best first
    popularity_scores: dict[str, np.ndarray]  # list name -> f32 rank-based scores
    golden: list[dict[str, Any]]
    index: Index
    session: ort.InferenceSession
    assembler: Any  # hotpath.Assembler
    candidates: CandidateGenerator  # ANN, session, trending, fresh; blended in Rust
    reranker: Any  # hotpath.Reranker

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_features(self) -> int:
        return len(self.manifest["feature_names"])

    @classmethod
    def load(cls, path: Path) -> LoadedBundle:
        """Resolve, verify and load a bundle (a bundle dir or a root with LATEST)."""
        bundle_dir = bundle_format.resolve(Path(path))
        manifest = bundle_format.read_manifest(bundle_dir)
        bundle_format.verify_files(bundle_dir, manifest)
        try:
            return cls._load_verified(bundle_dir, manifest)
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, OSError, RuntimeError) as e:
            raise BundleError(f"{bundle_dir}: cannot load: {type(e).__name__}: {e}") from e

    @classmethod
    def _load_verified(cls, bundle_dir: Path, manifest: dict[str, Any]) -> LoadedBundle:
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
            a = np.load(bundle_dir / name, allow_pickle=False)
            if dtype is not None and a.dtype != np.dtype(dtype):
                raise fail(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype)}")
            if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=False)):
                raise fail(f"{name} has shape {a.shape}, expected {shape}")
            return np.ascontiguousarray(a)

        item_ids = np.load(bundle_dir / "item_ids.npy", allow_pickle=False)
        n = len(item_ids)
        item_dense = npy("item_dense.npy", np.float32, (n, feature_defs.item_dim(g)))
        item_emb = npy("item_emb.npy", np.float32, (n, dim))
        item_genre = npy("item_genre.npy", np.float32, (n, g))
        item_primary = npy("item_primary_genre.npy", np.uint16, (n,))
        item_first_ts = npy("item_first_ts.npy", np.float64, (n,))
        user_ids = np.load(bundle_dir / "user_ids.npy", allow_pickle=False)
        u = len(user_ids)
        user_dense = npy("user_dense.npy", np.float32, (u, feature_defs.user_dim(g)))
        user_emb = npy("user_emb.npy", np.float32, (u, dim))
        user_last_ts = npy("user_last_ts.npy", np.float64, (u,))
        indptr = npy("user_seen_indptr.npy", np.int64, (u + 1,))
        seen = npy("user_seen_items.npy", np.uint32, (None,))
        if indptr[0] != 0 or indptr[-1] != len(seen) or np.any(np.diff(indptr) < 0):
            raise fail("user_seen_indptr is not a valid CSR row pointer for user_seen_items")
        if len(seen) and int(seen.max()) >= n:
            raise fail("user_seen_items refers to items outside the catalog")
        counts = manifest.get("counts") or {}
        for key, actual in (("items", n), ("users", u)):
            if key in counts and int(counts[key]) != actual:
                raise fail(f"manifest counts {key}={counts[key]}, the arrays have {actual}")

        titles = json.loads((bundle_dir / "item_titles.json").read_text())
        if len(titles) != n:
            raise fail(f"item_titles.json has {len(titles)} titles for {n} items")
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

        # Memory-mapped: usearch holds the GIL while it reads an index into memory (about 0.4 s at 1M items,
        # over 1 s on busy cores), which stalls every request of a node loading a bundle beside the served one.
        index = restore_index(bundle_dir / "index.usearch", manifest["index"], dim, n, view=True)
        session = ranker_session(bundle_dir / "ranker.onnx")

        return cls(
            path=bundle_dir,
            manifest=manifest,
            version=str(manifest["version"]),
            model_version=str(manifest.get("model_version", "")),
            genres=genres,
            embedding_dim=dim,
            surfaces=surfaces,
            item_ids=item_ids,
            item_index={str(x): i for i, x in enumerate(item_ids.tolist())},
            titles=[str(t) for t in titles],
            item_emb=item_emb,
            user_ids=user_ids,
            user_index={str(x): i for i, x in enumerate(user_ids.tolist())},
            user_dense=user_dense,
            user_emb=user_emb,
            user_last_ts=user_last_ts,
            user_seen_indptr=indptr,
            user_seen_items=seen,
            popularity=popularity,
            popularity_scores={name: rank_scores(len(a)) for name, a in popularity.items()},
            golden=list(golden),
            index=index,
            session=session,
            assembler=hotpath.Assembler(item_dense, item_emb, item_genre, item_first_ts),
            # One search at a time per index: the Python binding shares its search context.
            candidates=CandidateGenerator(
                index_search(index, threading.Lock()),
                item_emb,
                popularity.get("trending", _EMPTY_LIST),
                popularity.get("fresh", _EMPTY_LIST),
            ),
            reranker=hotpath.Reranker(item_primary),
        )

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
            genre = dense[len(feature_defs.USER_SCALARS) :]
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
        log.info(
            "bundle %s warmed up with %d golden requests",
            self.version,
            len(self.golden),
        )
