"""A small, random, but real bundle (written by trainer.bundle.stage_bundle) for node tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from usearch.index import Index

import hotpath
from hotpath import reference
from trainer import bundle as bundle_format
from trainer import features as feature_defs
from trainer.ivf import build_ivf

SURFACES = {"home": "global", "trending": "trending", "new": "fresh"}
NOW = 1_700_000_000.0


def linear_ranker(n_features: int, rng: np.random.Generator) -> bytes:
    """features f32 [N, F] -> score f32 [N] = sigmoid(features @ w + b)."""
    w = rng.normal(0, 0.5, size=(n_features, 1)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["logit2"]),
            helper.make_node("Add", ["logit2", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["prob"]),
            helper.make_node("Reshape", ["prob", "flat"], ["score"]),
        ],
        "linear_ranker",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel().tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, [1], [0.1]),
            helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


@dataclass(frozen=True)
class SyntheticItems:
    """The item arrays of a synthetic bundle, as its writer computed them (the bundle packs them into item_rows)."""

    dense: np.ndarray  # f32 [n, 5 + G]
    emb: np.ndarray  # f32 [n, D], unit norm
    genre: np.ndarray  # f32 [n, G], one-hot
    first_ts: np.ndarray  # f64 [n], the first ten unknown (-1)
    primary_genre: np.ndarray  # u16 [n]


def synthetic_items(rng: np.random.Generator, n_items: int, n_genres: int, dim: int) -> SyntheticItems:
    """The first draws of :func:`make_bundle` from its generator."""
    primary = rng.integers(0, n_genres, n_items).astype(np.uint16)
    genre = np.zeros((n_items, n_genres), np.float32)
    genre[np.arange(n_items), primary] = 1.0
    emb = rng.normal(size=(n_items, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    scalars = rng.normal(size=(n_items, len(feature_defs.ITEM_SCALARS))).astype(np.float32)
    dense = np.column_stack([scalars, genre]).astype(np.float32)
    first_ts = NOW - rng.uniform(0, 3e7, n_items)
    first_ts[:10] = -1.0
    return SyntheticItems(dense, emb, genre, first_ts, primary)


def bundle_items(*, n_items: int = 2000, n_genres: int = 5, dim: int = 16, seed: int = 0) -> SyntheticItems:
    """The item arrays that :func:`make_bundle` with these arguments wrote (the same draws)."""
    return synthetic_items(np.random.default_rng(seed), n_items, n_genres, dim)


def make_bundle(
    root: Path,
    *,
    prefix: str = "i",
    n_items: int = 2000,
    n_users: int = 300,
    n_genres: int = 5,
    dim: int = 16,
    seed: int = 0,
    golden_offset: float = 0.0,
    seed_history: bool = False,
) -> Path:
    """Write a bundle under ``root`` and return its directory. Item ids are ``{prefix}{row}``.

    ``seed_history`` adds the seen rows' times, values and labels (``user_seen_ts/values/positive.npy``)
    that the feature updater seeds online histories with.
    """
    rng = np.random.default_rng(seed)
    genres = [f"g{k}" for k in range(n_genres)]
    names = feature_defs.feature_names(genres)

    items = synthetic_items(rng, n_items, n_genres, dim)
    item_dense, item_emb, item_genre, item_first_ts = items.dense, items.emb, items.genre, items.first_ts

    seen_lists = [rng.choice(n_items, size=int(rng.integers(3, 30)), replace=False) for _ in range(n_users)]
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seen_lists])]).astype(np.int64)
    seen = np.concatenate(seen_lists).astype(np.uint32)
    user_emb = np.stack([item_emb[s].mean(axis=0) for s in seen_lists]).astype(np.float32)
    user_emb /= np.linalg.norm(user_emb, axis=1, keepdims=True)
    user_genre = np.stack([item_genre[s].mean(axis=0) for s in seen_lists]).astype(np.float32)
    user_dense = np.column_stack(
        [
            rng.normal(size=(n_users, len(feature_defs.USER_SCALARS))).astype(np.float32),
            np.zeros((n_users, feature_defs.session_dim(n_genres)), np.float32),  # batch: no session
            user_genre,
        ]
    ).astype(np.float32)
    user_last_ts = NOW - rng.uniform(0, 1e6, n_users)
    user_ids = np.array([f"u{k:03d}" for k in range(n_users)], dtype=str)
    item_ids = np.array([f"{prefix}{k}" for k in range(n_items)], dtype=str)

    order = rng.permutation(n_items)
    lists = {
        "global": order.tolist(),
        "trending": rng.permutation(n_items)[:300].tolist(),
        "fresh": np.argsort(-item_first_ts)[:300].tolist(),
    }

    index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=16, expansion_search=64)
    index.add(np.arange(n_items, dtype=np.uint64), item_emb)

    onnx_bytes = linear_ranker(len(names), rng)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    golden: list[dict[str, Any]] = []
    for u in range(0, n_users, max(1, n_users // 4))[:4]:
        cand = rng.choice(n_items, size=20, replace=False).astype(np.uint32)
        now = NOW + 3600.0
        x = reference.assemble(
            item_dense,
            item_emb,
            item_genre,
            item_first_ts,
            user_dense[u],
            user_emb[u],
            user_genre[u],
            float(user_last_ts[u]),
            now,
            feature_defs.context_vector(now),
            cand,
        )
        scores = session.run(["score"], {"features": x})[0] + golden_offset
        golden.append(
            {
                "user_id": str(user_ids[u]),
                "now_ts": now,
                "surface": "home",
                "items": [str(item_ids[i]) for i in cand],
                "scores": [float(s) for s in scores],
            }
        )

    version = bundle_format.new_version()
    manifest: dict[str, Any] = {
        "version": version,
        "parent": None,
        "model_version": f"linear-{prefix}-{seed}",
        "feature_schema_hash": feature_defs.schema_hash(genres, dim),
        "feature_names": names,
        "genres": genres,
        "embedding_dim": dim,
        "embedding_space_id": f"synthetic-{seed}",
        "index": {
            "metric": "ip",
            "dtype": "f32",
            "connectivity": 16,
            "expansion_search": 64,
        },
        "surfaces": SURFACES,
        "counts": {"items": n_items, "users": n_users},
        "cold_users": ["cold-1"],
        "metrics": {},
        "gates": {},
    }
    with bundle_format.stage_bundle(root, manifest) as st:
        st.file("ranker.onnx").write_bytes(onnx_bytes)
        st.file("teacher.lgb.txt").write_text("synthetic bundle: no teacher\n")
        index.save(str(st.file("index.usearch")))
        for name, array in build_ivf(item_emb).arrays().items():
            st.save_npy(name, array)
        st.save_ids("item", item_ids)
        st.save_json("item_titles.json", [f"Title {k}" for k in range(n_items)])
        st.save_npy("item_primary_genre.npy", items.primary_genre)
        st.save_npy("item_first_ts.npy", item_first_ts)
        hotpath.write_item_rows(st.file("item_rows.npy"), item_dense, item_emb, item_genre, item_first_ts)
        st.save_ids("user", user_ids)
        st.save_npy("user_dense.npy", user_dense)
        st.save_npy("user_emb.npy", user_emb)
        st.save_npy("user_last_ts.npy", user_last_ts)
        st.save_npy("user_seen_indptr.npy", indptr)
        st.save_npy("user_seen_items.npy", seen)
        if seed_history:
            # An interaction every 2000 s from a day before NOW, oldest first per user; ratings 1 to 5.
            st.save_npy(
                "user_seen_ts.npy", np.concatenate([NOW - 86_400.0 + 2000.0 * np.arange(len(s)) for s in seen_lists])
            )
            values = np.random.default_rng(seed + 1).integers(1, 6, len(seen)).astype(np.float64)
            st.save_npy("user_seen_values.npy", values)
            st.save_npy("user_seen_positive.npy", values >= 4)
        st.save_json("popularity.json", {"lists": lists})
        st.save_json("golden.json", golden)
    return root / version
