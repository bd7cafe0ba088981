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

import numpy as np
from tqdm import tqdm

import hotpath
from trainer.candidates import CandidateGenerator
from trainer.data import Interactions
from trainer.features import UserFeatures, context_vector, user_features


@dataclass
class ItemTables:
    """The per-item arrays a bundle carries (see trainer.bundle)."""

    dense: np.ndarray
    emb: np.ndarray
    genre: np.ndarray
    first_ts: np.ndarray
    primary_genre: np.ndarray

    def assembler(self) -> hotpath.Assembler:
        return hotpath.Assembler(self.dense, self.emb, self.genre, self.first_ts)

    def write_rows(self, path: Path) -> None:
        """The bundle's ``item_rows.npy``: these tables packed as the node maps them."""
        hotpath.write_item_rows(path, self.dense, self.emb, self.genre, self.first_ts)


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
