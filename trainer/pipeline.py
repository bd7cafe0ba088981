"""From interaction data to a gated, written bundle.

1. Split by the evaluation protocol; only the training part is used.
2. Ranker data: each training user's history is cut again (the last 20%
   are labels); embeddings, item features and lists are fit on the part
   before, so that no training row sees its own future.
3. Teacher (LightGBM LambdaRank), then the student distilled from it,
   exported to ONNX and quantized. Gate: the student's NDCG@10 on the
   validation users is within 2% of the teacher's, or no bundle is written.
4. Serving artifacts are refit on the whole training part; batch user
   features, golden requests, metrics and the manifest complete the bundle.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer import bundle as bundle_io
from trainer.artifacts import Artifacts, IndexConfig, build_artifacts
from trainer.data import Dataset, Interactions, load_movielens
from trainer.embeddings import EmbeddingConfig, embedding_space_id, genre_matrix, genre_vocabulary
from trainer.errors import DataError, GateFailed
from trainer.evaluate import evaluate
from trainer.exposures import LoggedRows
from trainer.features import context_vector, feature_names, schema_hash
from trainer.metrics import grouped_ndcg
from trainer.popularity import SURFACES
from trainer.ranker_io import onnx_scores, ranker_session
from trainer.rows import Rows, build_rows, history_features, user_slices
from trainer.split import Split, protocol_split, tail_split
from trainer.student import Mlp, StudentConfig, train_student, write_quantized
from trainer.teacher import TeacherConfig, save_teacher, teacher_scores, train_teacher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    pool_size: int = 500
    label_fraction: float = 0.2
    valid_fraction: float = 0.2
    student_gate: float = 0.02  # the student may trail the teacher's NDCG@10 by this share
    golden_users: int = 8
    golden_items: int = 20
    seed: int = 0
    embeddings: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)


@dataclass
class Trained:
    bundle_dir: Path
    manifest: dict[str, Any]


def _split_users(rows: Rows, fraction: float, seed: int) -> tuple[Rows, Rows]:
    rng = np.random.default_rng(seed)
    valid = rng.random(len(rows.users)) < fraction
    return rows.subset_groups(~valid), rows.subset_groups(valid)


def _user_tables(data: Interactions, artifacts: Artifacts) -> dict[str, np.ndarray]:
    """Batch user features as of the end of ``data``, and each user's seen items."""
    slices = user_slices(data)
    users = sorted(slices)
    dense, emb, last = [], [], []
    indptr = [0]
    seen: list[np.ndarray] = []
    for u in users:
        sl = slices[u]
        uf = history_features(data, sl, artifacts.items)
        dense.append(uf.dense)
        emb.append(uf.embedding)
        last.append(uf.last_ts)
        seen.append(data.item[sl].astype(np.uint32))
        indptr.append(indptr[-1] + sl.stop - sl.start)
    return {
        "user_ids.npy": np.array([data.user_ids[u] for u in users], dtype=str),
        "user_dense.npy": np.array(dense, dtype=np.float32),
        "user_emb.npy": np.array(emb, dtype=np.float32),
        "user_last_ts.npy": np.array(last, dtype=np.float64),
        "user_seen_indptr.npy": np.array(indptr, dtype=np.int64),
        "user_seen_items.npy": np.concatenate(seen) if seen else np.empty(0, np.uint32),
        # What the feature updater seeds a user's online history with (node.updater), aligned with user_seen_items.
        "user_seen_ts.npy": _per_user(data.timestamp, slices, users, np.float64),
        "user_seen_values.npy": _per_user(data.value, slices, users, np.float64),
        "user_seen_positive.npy": _per_user(data.positive, slices, users, np.bool_),
    }


def _per_user(column: np.ndarray, slices: dict[int, slice], users: list[int], dtype: type) -> np.ndarray:
    """``column``'s rows user by user, in the order of ``user_seen_items``."""
    return np.concatenate([column[slices[u]] for u in users]).astype(dtype) if users else np.empty(0, dtype)


def _golden(
    data: Interactions, artifacts: Artifacts, sess_path: Path, item_ids: list[str], config: TrainConfig
) -> list[dict[str, Any]]:
    """A few requests with the scores the student gives them, for the node to check."""
    sess = ranker_session(sess_path)
    assembler = artifacts.items.assembler()
    gen = artifacts.generator()
    slices = user_slices(data)
    users = sorted(slices)[:: max(1, len(slices) // config.golden_users)][: config.golden_users]
    out = []
    for u in users:
        sl = slices[u]
        uf = history_features(data, sl, artifacts.items)
        now = artifacts.as_of + 3600.0
        seen = np.unique(data.item[sl]).astype(np.uint32)
        pool = gen.pool(uf.embedding, int(data.item[sl][-1]), seen, config.golden_items)
        x = assembler.assemble(uf.dense, uf.embedding, uf.genre, uf.last_ts, now, context_vector(now), pool.items)
        out.append(
            {
                "user_id": data.user_ids[u],
                "now_ts": now,
                "surface": "home",
                "items": [item_ids[i] for i in pool.items],
                "scores": [float(s) for s in onnx_scores(sess, x)],
            }
        )
    return out


def train(
    dataset: Dataset,
    bundle_root: Path,
    config: TrainConfig | None = None,
    *,
    parent: str | None = None,
    source: dict[str, Any] | None = None,
    logged: LoggedRows | None = None,
) -> Trained:
    """``logged``: rank on rows from the exposure log (trainer.exposures) instead of rows built here."""
    config = config or TrainConfig()
    catalog = dataset.catalog
    split: Split = protocol_split(dataset.interactions)
    genres = genre_vocabulary(catalog)
    item_genre = genre_matrix(catalog, genres)
    names = feature_names(genres)

    if logged is None:
        log.info("ranker data: cutting each training user's history for labels")
        history, labels = tail_split(split.train, config.label_fraction)
        stage1 = build_artifacts(history, catalog, item_genre, config.embeddings, config.index)
        rows = build_rows(history, labels, stage1.items, stage1.generator(), config.pool_size, desc="ranker rows")
    else:
        rows = logged.rows
        if rows.x.shape[1] != len(names):
            raise DataError(f"the exposure log has {rows.x.shape[1]} features, this data's schema {len(names)}")
    fit_rows, valid_rows = _split_users(rows, config.valid_fraction, config.seed)

    log.info("teacher: LightGBM on %d rows", len(fit_rows.y))
    booster = train_teacher(fit_rows, valid_rows, names, config.teacher)
    t_fit = teacher_scores(booster, fit_rows.x)

    def student_quality(candidate: Mlp) -> float:
        scores = candidate.forward(valid_rows.x)
        return float(grouped_ndcg(scores, valid_rows.y, valid_rows.groups, valid_rows.n_positives).mean())

    mlp = train_student(fit_rows, t_fit, config.student, student_quality)

    version = bundle_io.new_version()
    stage2 = build_artifacts(split.train, catalog, item_genre, config.embeddings, config.index)
    space = embedding_space_id(stage2.items.emb)
    if logged is not None and logged.feature_schema_hash != schema_hash(genres, int(stage2.items.emb.shape[1])):
        raise DataError(f"the exposure log's feature schema {logged.feature_schema_hash} is not this data's")
    manifest: dict[str, Any] = {
        "version": version,
        "parent": parent,
        "feature_names": names,
        "genres": genres,
        "embedding_dim": int(stage2.items.emb.shape[1]),
        "feature_schema_hash": schema_hash(genres, int(stage2.items.emb.shape[1])),
        "embedding_space_id": space,
        "index": config.index.as_dict(),
        "surfaces": SURFACES,
        "counts": {"items": len(catalog), "users": len(set(split.train.user.tolist()))},
        "cold_users": split.cold_users,
        "source": source or {"dataset": dataset.name},
        "training": {"config": asdict(config), "as_of": stage2.as_of},
    }
    with bundle_io.stage_bundle(bundle_root, manifest) as st:
        write_quantized(mlp, len(names), st.file("ranker.onnx"))
        student = ranker_session(st.file("ranker.onnx"))
        nd_t = grouped_ndcg(
            teacher_scores(booster, valid_rows.x), valid_rows.y, valid_rows.groups, valid_rows.n_positives
        )
        nd_s = grouped_ndcg(onnx_scores(student, valid_rows.x), valid_rows.y, valid_rows.groups, valid_rows.n_positives)
        teacher_ndcg, student_ndcg = float(nd_t.mean()), float(nd_s.mean())
        gate: dict[str, Any] = {
            "name": "student_vs_teacher_ndcg@10",
            "teacher": teacher_ndcg,
            "student": student_ndcg,
            "max_drop": config.student_gate,
            "users": len(valid_rows.users),
            "passed": student_ndcg >= (1.0 - config.student_gate) * teacher_ndcg,
        }
        log.info("gate %s", gate)
        if not gate["passed"]:
            raise GateFailed(
                f"student NDCG@10 {gate['student']:.4f} trails the teacher's {gate['teacher']:.4f} "
                f"by more than {config.student_gate:.0%}; no bundle written"
            )
        save_teacher(booster, st.file("teacher.lgb.txt"))
        stage2.index.save(str(st.file("index.usearch")))
        for name, array in stage2.ivf.arrays().items():
            st.save_npy(name, array)
        tables = stage2.items
        st.save_ids("item", np.array(catalog.item_ids, dtype=str))
        st.save_json("item_titles.json", catalog.titles)
        tables.write(st)
        user_tables = _user_tables(split.train, stage2)
        st.save_ids("user", user_tables.pop("user_ids.npy"))
        for name, arr in user_tables.items():
            st.save_npy(name, arr)
        st.save_json("popularity.json", {"lists": {k: v.tolist() for k, v in stage2.lists.items()}})
        st.save_json("golden.json", _golden(split.train, stage2, st.file("ranker.onnx"), catalog.item_ids, config))
        metrics = evaluate(
            stage2,
            split.train,
            split.test_warm,
            split.test_cold,
            {"teacher": lambda x: teacher_scores(booster, x), "student": lambda x: onnx_scores(student, x)},
            config.pool_size,
        )
        manifest["model_version"] = "student-" + bundle_io.sha256_file(st.file("ranker.onnx"))[:12]
        manifest["gates"] = {"student": gate}
        manifest["metrics"] = metrics
    bundle_dir = bundle_root / version
    return Trained(bundle_dir, bundle_io.read_manifest(bundle_dir))


def train_movielens(bundle_root: Path, config: TrainConfig | None = None) -> Path:
    """Train a bundle from the MovieLens copy the project carries."""
    return train(load_movielens(), bundle_root, config, source={"preset": "movielens"}).bundle_dir
