"""A servable bundle from catalog-scale synthetic data (``edgerank synth``).

The files and manifest keys are those :mod:`trainer.pipeline` writes. What
differs, and is recorded in the manifest under ``training.sampled``:

* the ranker (LightGBM teacher, distilled int8 student, the same gate) is fit
  on the rows of ``ranker_users`` sampled users; each one's last 20% of
  interactions are the labels, and the item features and candidate lists the
  rows see exclude those label rows;
* the index, the item features, the popularity lists and the batch user
  features cover every item and every user;
* the embeddings are the generator's latent vectors (nothing is fitted);
* the index's ``expansion_search`` is the smallest that reaches
  ``target_recall`` (recall@100 against exact search on ``recall_queries``
  users), and the measurements are in ``metrics.index``;
* the offline evaluation is not run at this scale; no user is held out cold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from usearch.index import Index

from trainer import bundle as bundle_io
from trainer.artifacts import IndexConfig, build_index, primary_genre
from trainer.batch_users import batch_user_tables
from trainer.candidates import CandidateGenerator, index_search
from trainer.data import Interactions
from trainer.embeddings import embedding_space_id
from trainer.errors import GateFailed
from trainer.features import context_vector, feature_names, item_features, schema_hash
from trainer.index_tuning import tune_expansion
from trainer.ivf import Ivf, build_ivf, ivf_search
from trainer.metrics import grouped_ndcg
from trainer.popularity import SURFACES, popularity_lists
from trainer.ranker_io import onnx_scores, ranker_session
from trainer.rows import ItemTables, Rows, build_rows
from trainer.student import StudentConfig, train_student, write_quantized
from trainer.synth_large import GENRES, LargeSynth, LargeSynthConfig, generate
from trainer.teacher import TeacherConfig, save_teacher, teacher_scores, train_teacher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthBundleConfig:
    data: LargeSynthConfig = field(default_factory=LargeSynthConfig)
    # expansion_add 64 (not 128): the graph builds in half the time; expansion_search is tuned below.
    index: IndexConfig = field(default_factory=lambda: IndexConfig(expansion_add=64, expansion_search=256))
    ranker_users: int = 2000
    pool_size: int = 500
    label_fraction: float = 0.2
    valid_fraction: float = 0.2
    student_gate: float = 0.02
    expansions: tuple[int, ...] = (64, 128, 256, 512)
    target_recall: float = 0.95
    recall_queries: int = 200
    golden_users: int = 8
    golden_items: int = 20
    # Fewer trees and epochs than trainer.pipeline: on two cores the ranker must take about a minute.
    teacher: TeacherConfig = field(default_factory=lambda: TeacherConfig(num_trees=150))
    student: StudentConfig = field(
        default_factory=lambda: StudentConfig(epochs=12, min_steps=1500, groups_per_batch=32, restarts=1)
    )


@dataclass
class SynthBuilt:
    bundle_dir: Path
    manifest: dict[str, Any]
    seconds: dict[str, float]


class _Phases:
    """Wall time per phase, with one progress bar over the phases."""

    def __init__(self, names: tuple[str, ...]):
        self.seconds: dict[str, float] = {}
        self._bar = tqdm(total=len(names), desc="synth", unit="phase")

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        self._bar.set_postfix_str(name)
        t0 = time.perf_counter()
        out = fn()
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        log.info("%s: %.1f s", name, self.seconds[name])
        self._bar.update(1)
        return out

    def close(self) -> None:
        self._bar.close()


PHASES = (
    "generate",
    "index",
    "ivf",
    "ranker rows",
    "teacher",
    "student",
    "serving tables",
    "user tables",
    "recall",
    "write",
)


def _item_tables(data: Interactions, synth: LargeSynth) -> tuple[ItemTables, dict[str, np.ndarray], float]:
    as_of = float(data.timestamp.max())
    n = len(synth.catalog)
    dense, first_ts = item_features(
        n, data.item, data.value, data.positive, data.timestamp, synth.item_genre, synth.catalog.years, as_of
    )
    tables = ItemTables(dense, synth.item_emb, synth.item_genre, first_ts, primary_genre(synth.item_genre))
    return tables, popularity_lists(data, n, as_of), as_of


def _sample_users(data: Interactions, n: int, min_rows: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(data.user, minlength=len(data.user_ids))
    eligible = np.flatnonzero(counts >= min_rows)
    return np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))


def _generator(index: Index, lists_ivf: Ivf, tables: ItemTables, lists: dict[str, np.ndarray]) -> CandidateGenerator:
    """The node's generator: the user retrieval from the IVF index, session neighbours from the graph."""
    search = ivf_search(lists_ivf.index(tables.emb))
    return CandidateGenerator(search, index_search(index), tables.emb, lists["trending"], lists["fresh"])


def _ranker_rows(
    synth: LargeSynth, index: Index, lists_ivf: Ivf, config: SynthBundleConfig, rng: np.random.Generator
) -> tuple[Rows, dict[str, Any]]:
    data = synth.interactions
    sampled = _sample_users(data, config.ranker_users, 5, rng)
    in_sample = np.zeros(len(data.user_ids), bool)
    in_sample[sampled] = True
    rows_mask = in_sample[data.user]
    sub = data.subset(rows_mask)
    tail = _tail_mask(sub.user, config.label_fraction)
    history, labels = sub.subset(~tail), sub.subset(tail)
    # What the rows may see: everything but the sampled users' label rows.
    label_row = np.zeros(len(data), bool)
    label_row[np.flatnonzero(rows_mask)[tail]] = True
    tables, lists, _ = _item_tables(data.subset(~label_row), synth)
    gen = _generator(index, lists_ivf, tables, lists)
    rows = build_rows(history, labels, tables, gen, config.pool_size, desc="ranker rows")
    info = {
        "ranker_users": len(sampled),
        "ranker_groups": len(rows.groups),
        "ranker_rows": len(rows.y),
        "of_users": len(data.user_ids),
        "how": "the ranker is fit on the rows of these sampled users only; index, item features, "
        "popularity lists and batch user features cover every item and user",
    }
    return rows, info


def _tail_mask(user: np.ndarray, fraction: float) -> np.ndarray:
    """True for each user's last ceil(fraction * n) rows, as ``trainer.split.tail_split`` cuts, vectorised."""
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    counts = np.diff(np.r_[starts, len(user)])
    k = np.ceil(fraction * counts).astype(np.int64)
    position = np.arange(len(user)) - np.repeat(starts, counts)
    return np.asarray(position >= np.repeat(counts - k, counts))


def _split_groups(rows: Rows, fraction: float, rng: np.random.Generator) -> tuple[Rows, Rows]:
    valid = rng.random(len(rows.users)) < fraction
    return rows.subset_groups(~valid), rows.subset_groups(valid)


def _golden(
    tables: ItemTables,
    users: dict[str, np.ndarray],
    gen: CandidateGenerator,
    sess_path: Path,
    as_of: float,
    n: int,
    k: int,
) -> list[dict[str, Any]]:
    """Requests scored from the bundle's own batch features, for the node's warm-up check."""
    sess = ranker_session(sess_path)
    assembler = tables.assembler()
    g = tables.genre.shape[1]
    indptr, seen = users["user_seen_indptr"], users["user_seen_items"]
    out = []
    for row in np.linspace(0, len(users["user_ids"]) - 1, n).astype(np.int64):
        dense, emb = users["user_dense"][row], users["user_emb"][row]
        history = seen[indptr[row] : indptr[row + 1]]
        now = as_of + 3600.0
        pool = gen.pool(emb, int(history[-1]), np.unique(history).astype(np.uint32), k)
        x = assembler.assemble(
            dense, emb, dense[-g:], float(users["user_last_ts"][row]), now, context_vector(now), pool.items
        )
        out.append(
            {
                "user_id": str(users["user_ids"][row]),
                "now_ts": now,
                "surface": "home",
                "items": [f"item-{i}" for i in pool.items.tolist()],
                "scores": [float(s) for s in onnx_scores(sess, x)],
            }
        )
    return out


def build_synth_bundle(bundle_root: Path, config: SynthBundleConfig) -> SynthBuilt:
    """Generate the data, fit the ranker on a sample, and write a gated bundle under ``bundle_root``."""
    rng = np.random.default_rng(config.data.seed + 1)
    genres = list(GENRES)
    names = feature_names(genres)
    phases = _Phases(PHASES)
    try:
        synth: LargeSynth = phases.run("generate", lambda: generate(config.data))
        index = phases.run("index", lambda: build_index(synth.item_emb, config.index, progress=True))
        lists_ivf = phases.run("ivf", lambda: build_ivf(synth.item_emb, progress=True))
        rows, sampled = phases.run("ranker rows", lambda: _ranker_rows(synth, index, lists_ivf, config, rng))
        fit_rows, valid_rows = _split_groups(rows, config.valid_fraction, rng)
        booster = phases.run("teacher", lambda: train_teacher(fit_rows, valid_rows, names, config.teacher))
        t_fit = teacher_scores(booster, fit_rows.x)

        def quality(candidate: Any) -> float:
            scores = candidate.forward(valid_rows.x)
            return float(grouped_ndcg(scores, valid_rows.y, valid_rows.groups, valid_rows.n_positives).mean())

        mlp = phases.run("student", lambda: train_student(fit_rows, t_fit, config.student, quality))
        data = synth.interactions
        tables, lists, as_of = phases.run("serving tables", lambda: _item_tables(data, synth))
        users = phases.run("user tables", lambda: batch_user_tables(data, synth.item_emb, synth.item_genre))
        query_rows = rng.choice(len(users["user_ids"]), size=config.recall_queries, replace=False)
        recall = phases.run(
            "recall",
            lambda: tune_expansion(
                index, synth.item_emb, users["user_emb"][query_rows], config.expansions, config.target_recall
            ),
        )
        index_spec = {**config.index.as_dict(), "expansion_search": recall["expansion_search"]}
        manifest: dict[str, Any] = {
            "version": bundle_io.new_version(),
            "parent": None,
            "feature_names": names,
            "genres": genres,
            "embedding_dim": int(synth.item_emb.shape[1]),
            "feature_schema_hash": schema_hash(genres, int(synth.item_emb.shape[1])),
            "embedding_space_id": embedding_space_id(synth.item_emb),
            "index": index_spec,
            "surfaces": SURFACES,
            "counts": {"items": len(synth.catalog), "users": len(users["user_ids"])},
            "cold_users": [],
            "source": {"synthetic": asdict(config.data), "interactions": len(data)},
            "training": {"config": asdict(config), "as_of": as_of, "sampled": sampled},
            "metrics": {"index": recall},
        }
        gate = phases.run(
            "write",
            lambda: _write(
                bundle_root, manifest, synth, (index, lists_ivf), tables, lists, users, booster, mlp, valid_rows, config
            ),
        )
    finally:
        phases.close()
    bundle_dir = bundle_root / manifest["version"]
    log.info("gate %s", gate)
    return SynthBuilt(bundle_dir, bundle_io.read_manifest(bundle_dir), phases.seconds)


def _write(
    bundle_root: Path,
    manifest: dict[str, Any],
    synth: LargeSynth,
    indexes: tuple[Index, Ivf],
    tables: ItemTables,
    lists: dict[str, np.ndarray],
    users: dict[str, np.ndarray],
    booster: Any,
    mlp: Any,
    valid_rows: Rows,
    config: SynthBundleConfig,
) -> dict[str, Any]:
    names = manifest["feature_names"]
    with bundle_io.stage_bundle(bundle_root, manifest) as st:
        write_quantized(mlp, len(names), st.file("ranker.onnx"))
        student = ranker_session(st.file("ranker.onnx"))
        nd_t = grouped_ndcg(
            teacher_scores(booster, valid_rows.x), valid_rows.y, valid_rows.groups, valid_rows.n_positives
        )
        nd_s = grouped_ndcg(onnx_scores(student, valid_rows.x), valid_rows.y, valid_rows.groups, valid_rows.n_positives)
        gate: dict[str, Any] = {
            "name": "student_vs_teacher_ndcg@10",
            "teacher": float(nd_t.mean()),
            "student": float(nd_s.mean()),
            "max_drop": config.student_gate,
            "users": len(valid_rows.users),
            "passed": float(nd_s.mean()) >= (1.0 - config.student_gate) * float(nd_t.mean()),
        }
        if not gate["passed"]:
            raise GateFailed(
                f"student NDCG@10 {gate['student']:.4f} trails the teacher's {gate['teacher']:.4f} "
                f"by more than {config.student_gate:.0%}; no bundle written"
            )
        save_teacher(booster, st.file("teacher.lgb.txt"))
        index, lists_ivf = indexes
        index.save(str(st.file("index.usearch")))
        for name, array in lists_ivf.arrays().items():
            st.save_npy(name, array)
        st.save_ids("item", np.array(synth.catalog.item_ids, dtype=str))
        st.save_json("item_titles.json", synth.catalog.titles)
        tables.write(st)
        for name, arr in users.items():
            if name == "user_ids":
                st.save_ids("user", arr)
            else:
                st.save_npy(f"{name}.npy", arr)
        st.save_json("popularity.json", {"lists": {k: v.tolist() for k, v in lists.items()}})
        gen = _generator(index, lists_ivf, tables, lists)
        as_of = float(manifest["training"]["as_of"])
        golden = _golden(tables, users, gen, st.file("ranker.onnx"), as_of, config.golden_users, config.golden_items)
        st.save_json("golden.json", golden)
        manifest["model_version"] = "student-" + bundle_io.sha256_file(st.file("ranker.onnx"))[:12]
        manifest["gates"] = {"student": gate}
        manifest["metrics"]["student_gate"] = gate
    return gate
