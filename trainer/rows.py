"""Ranking rows: per user, the candidate pool the node would score, as features.

The same builder makes the ranker's training rows (history = a user's
interactions before their label window) and the evaluation rows (history =
the training part, labels = the held-out part). Features come from
:func:`trainer.features.user_features` and the Rust assembler, exactly as on
the serving path, and only from history strictly before ``now`` (the first
label's time, which is also the request time of the session block).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import hotpath
from hotpath.item_rows import item_columns
from trainer.bundle import Staging
from trainer.candidates import CandidateGenerator
from trainer.data import Interactions
from trainer.features import UserFeatures, context_vector, item_dim, user_features

ITEM_ROWS = "item_rows.npy"


@dataclass
class ItemTables:
    """The per-item arrays a bundle carries (see trainer.bundle): in memory, or views of a bundle's item rows."""

    dense: np.ndarray
    emb: np.ndarray
    genre: np.ndarray
    first_ts: np.ndarray
    primary_genre: np.ndarray
    # The bundle's mapped item_rows.npy when the arrays are views of it (:meth:`open`), else None.
    rows_file: Path | None = None
    rows: np.ndarray | None = None

    @classmethod
    def open(cls, bundle_dir: Path, manifest: dict[str, Any]) -> ItemTables:
        """A written bundle's item arrays: views of its ``item_rows.npy``, memory-mapped read-only (no copy).

        Raises ``ValueError`` if the file's rows do not have the stride of the manifest's dimensions.
        """
        g, dim = len(manifest["genres"]), int(manifest["embedding_dim"])
        path = bundle_dir / ITEM_ROWS
        # A plain ndarray over the map (the file is C-ordered, so no copy).
        rows = np.ascontiguousarray(np.load(path, mmap_mode="r", allow_pickle=False))
        columns = item_columns(rows, dim, g, item_dim(g))
        primary = np.load(bundle_dir / "item_primary_genre.npy", mmap_mode="r", allow_pickle=False)
        return cls(columns.dense, columns.emb, columns.genre, columns.first_ts, primary, path, columns.rows)

    @property
    def vectors(self) -> np.ndarray:
        """C-contiguous rows that begin with the embeddings, for the IVF index's exact re-score: the packed
        table when the arrays are its views, else the embeddings."""
        return self.emb if self.rows is None else self.rows

    def assembler(self) -> hotpath.Assembler:
        if self.rows_file is not None:  # the mapped file itself, as the node reads it
            return hotpath.Assembler.open(self.rows_file, self.emb.shape[1], self.genre.shape[1], self.dense.shape[1])
        return hotpath.Assembler(self.dense, self.emb, self.genre, self.first_ts)

    def write(self, st: Staging) -> None:
        """A bundle's item files: ``item_rows.npy`` (the arrays packed as the node maps them; the bundle
        carries them nowhere else), ``item_primary_genre.npy`` and ``item_first_ts.npy``."""
        hotpath.write_item_rows(st.file(ITEM_ROWS), self.dense, self.emb, self.genre, self.first_ts)
        st.save_npy("item_primary_genre.npy", self.primary_genre)
        st.save_npy("item_first_ts.npy", self.first_ts)


@dataclass
class Rows:
    x: np.ndarray  # f32 [N, F]
    y: np.ndarray  # f32 [N], 1 for a positive in the label window
    groups: np.ndarray  # i64 [n_groups], rows per group (one group per user)
    users: np.ndarray  # i64 [n_groups], user index
    items: np.ndarray  # u32 [N], the candidate item rows
    source: np.ndarray  # u8 [N]
    retrieval_score: np.ndarray  # f32 [N]
    now: np.ndarray  # f64 [n_groups]
    n_positives: np.ndarray  # i64 [n_groups], label positives (retrieved or not)

    def offsets(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.groups)]

    def subset_groups(self, keep: np.ndarray) -> Rows:
        row_mask = np.repeat(keep, self.groups)
        return Rows(
            self.x[row_mask],
            self.y[row_mask],
            self.groups[keep],
            self.users[keep],
            self.items[row_mask],
            self.source[row_mask],
            self.retrieval_score[row_mask],
            self.now[keep],
            self.n_positives[keep],
        )


def user_slices(data: Interactions) -> dict[int, slice]:
    """Row range of each user in interactions sorted by user."""
    if len(data) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, data.user[1:] != data.user[:-1]])
    ends = np.r_[starts[1:], len(data.user)]
    return {int(data.user[s]): slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)}


def history_features(data: Interactions, sl: slice, items: ItemTables, now: float | None = None) -> UserFeatures:
    """A user's features from their rows ``sl``; ``now`` (the request time) fills the session block."""
    return user_features(
        data.item[sl], data.value[sl], data.positive[sl], data.timestamp[sl], items.emb, items.genre, now=now
    )


def build_rows(
    history: Interactions,
    labels: Interactions,
    items: ItemTables,
    generator: CandidateGenerator,
    pool_size: int,
    *,
    eligible: np.ndarray | None = None,
    desc: str = "rows",
) -> Rows:
    """One group per user with history and at least one positive label.

    ``eligible`` (bool per item) masks items that may not be candidates (the
    evaluation protocol's "training items only").
    """
    assembler = items.assembler()
    hist = user_slices(history)
    lab = user_slices(labels)
    never = np.flatnonzero(~eligible).astype(np.uint32) if eligible is not None else None
    xs, ys, groups, users, its, srcs, rets, nows, npos = [], [], [], [], [], [], [], [], []
    for u in tqdm(sorted(lab), desc=desc, unit="user", leave=False):
        if u not in hist:
            continue
        ls = lab[u]
        positives = labels.item[ls][labels.positive[ls]]
        if len(positives) == 0:
            continue
        hs = hist[u]
        now = float(labels.timestamp[ls].min())
        uf = history_features(history, hs, items, now)
        seen = np.unique(history.item[hs]).astype(np.uint32)
        exclude = seen if never is None else np.union1d(seen, never).astype(np.uint32)
        pool = generator.pool(uf.embedding, int(history.item[hs][-1]), exclude, pool_size)
        if len(pool.items) == 0:
            continue
        x = assembler.assemble(uf.dense, uf.embedding, uf.genre, uf.last_ts, now, context_vector(now), pool.items)
        xs.append(x)
        ys.append(np.isin(pool.items, positives).astype(np.float32))
        groups.append(len(pool.items))
        users.append(u)
        its.append(pool.items)
        srcs.append(pool.source)
        rets.append(pool.score)
        nows.append(now)
        npos.append(len(np.unique(positives)))
    if not xs:
        raise ValueError(f"{desc}: no user has both history and a positive label")
    return Rows(
        np.concatenate(xs),
        np.concatenate(ys),
        np.array(groups, dtype=np.int64),
        np.array(users, dtype=np.int64),
        np.concatenate(its),
        np.concatenate(srcs),
        np.concatenate(rets),
        np.array(nows, dtype=np.float64),
        np.array(npos, dtype=np.int64),
    )
