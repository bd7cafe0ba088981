"""Catalog-scale synthetic data (a million items and users), generated straight into arrays.

:mod:`trainer.synth` writes CSV for small catalogs; at a million items and
users that route (CSV, per-user Python loops, SVD) takes far too long on two
cores. Here everything is vectorised:

* items sit in ``clusters`` of a ``latent_rank``-dimensional latent space
  (cluster sizes are skewed too), mapped linearly into ``dim`` dimensions
  with a little isotropic noise and unit-normalised; an item's primary genre
  follows its cluster;
* item popularity is Zipf-distributed (``zipf``), in random order;
* each user prefers two clusters (chosen by their popularity); the number of
  interactions per user is log-normal; each interaction comes from the
  user's clusters (``affinity_share``) or from the whole catalog: of
  ``choices`` items drawn by popularity, the user takes the one closest to
  their taste;
* timestamps grow through each user's history; the rating reflects the
  affinity between the user's taste and the item, plus noise.

The embeddings are the latent vectors themselves (nothing is fitted), so the
bundle's ``embedding_space_id`` hashes them as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from trainer.data import Catalog, Interactions
from trainer.synth import GENRES, START_TS

SPAN_S = 3e7  # about a year of activity
MAX_PER_USER = 1000
CHUNK = 1 << 19


@dataclass(frozen=True)
class LargeSynthConfig:
    items: int = 1_000_000
    users: int = 1_000_000
    dim: int = 64
    clusters: int = 512
    latent_rank: int = 16
    spread: float = 0.6  # noise norm around a unit-norm cluster centre, in the latent space
    isotropic: float = 0.1  # noise norm added in the embedding space
    zipf: float = 1.05
    mean_interactions: float = 20.0
    min_interactions: int = 3
    affinity_share: float = 0.7
    choices: int = 4  # items offered per interaction; the closest to the user's taste is taken
    seed: int = 0


@dataclass
class LargeSynth:
    catalog: Catalog
    item_emb: np.ndarray  # f32 [n_items, dim], unit norm
    item_genre: np.ndarray  # f32 [n_items, G]
    interactions: Interactions  # sorted by (user, timestamp)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return np.asarray(x / n, dtype=np.float32)


def _items(config: LargeSynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(centres in embedding space, item_cluster, item_emb, popularity).

    Items live in a ``latent_rank``-dimensional space (clusters plus noise) mapped linearly into
    ``dim`` dimensions, plus a little isotropic noise: like learnt embeddings, the vectors have a
    low intrinsic dimension, which is what makes graph indexes work on real data.
    """
    n, d, c, r = config.items, config.dim, config.clusters, config.latent_rank
    centres = _unit(rng.standard_normal((c, r)))
    lift = (rng.standard_normal((r, d)) / np.sqrt(r)).astype(np.float32)
    cluster_weight = 1.0 / np.sqrt(np.arange(1, c + 1))
    item_cluster = rng.choice(c, size=n, p=cluster_weight / cluster_weight.sum()).astype(np.int32)
    emb = np.empty((n, d), np.float32)
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        z = centres[item_cluster[s:e]] + rng.standard_normal((e - s, r)).astype(np.float32) * (
            config.spread / np.sqrt(r)
        )
        iso = rng.standard_normal((e - s, d)).astype(np.float32) * (config.isotropic / np.sqrt(d))
        emb[s:e] = _unit(z @ lift + iso)
    pop = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** config.zipf
    return _unit(centres @ lift), item_cluster, emb, pop[rng.permutation(n)]


def _catalog(
    config: LargeSynthConfig, item_cluster: np.ndarray, rng: np.random.Generator
) -> tuple[Catalog, np.ndarray]:
    n, g = config.items, len(GENRES)
    primary = item_cluster % g
    second = rng.integers(0, g, n)
    has_second = rng.random(n) < 0.3
    item_genre = np.zeros((n, g), np.float32)
    item_genre[np.arange(n), primary] = 1.0
    item_genre[np.flatnonzero(has_second), second[has_second]] = 1.0
    names = np.array(GENRES, dtype=object)
    genres = [
        [names[p]] if not h or s == p else [names[p], names[s]]
        for p, s, h in zip(primary.tolist(), second.tolist(), has_second.tolist(), strict=True)
    ]
    years = (1980 + rng.integers(0, 45, n)).astype(np.float64)
    catalog = Catalog(
        item_ids=[f"item-{i}" for i in range(n)],
        titles=[f"Synthetic item {i}" for i in range(n)],
        genres=genres,
        tags=[[] for _ in range(n)],
        years=years,
    )
    return catalog, item_genre


def _draw(cum: np.ndarray, low: np.ndarray, width: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions in ``cum`` (a cumulative weight) drawn in [low, low + width), by weight."""
    u = low + rng.random(len(low)) * width
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _interactions(
    config: LargeSynthConfig,
    centres: np.ndarray,
    item_cluster: np.ndarray,
    emb: np.ndarray,
    pop: np.ndarray,
    rng: np.random.Generator,
    progress: tqdm,
) -> Interactions:
    n_users, c = config.users, config.clusters
    # Items ordered by cluster; cumulative popularity in that order, per cluster and overall.
    by_cluster = np.argsort(item_cluster, kind="stable")
    cum = np.cumsum(pop[by_cluster])
    cluster_total = np.bincount(item_cluster, weights=pop, minlength=c)
    cluster_low = np.r_[0.0, np.cumsum(cluster_total)[:-1]]
    taste = rng.choice(c, size=(n_users, 2), p=cluster_total / cluster_total.sum())
    user_vec = _unit(centres[taste[:, 0]] + centres[taste[:, 1]])

    sigma = 0.8
    mu = np.log(max(config.mean_interactions - config.min_interactions, 1.0)) - sigma**2 / 2
    counts = config.min_interactions + np.minimum(
        np.round(rng.lognormal(mu, sigma, n_users)).astype(np.int64), MAX_PER_USER
    )
    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    total = len(user)
    item = np.empty(total, np.int64)
    value = np.empty(total, np.float64)
    for s in range(0, total, CHUNK):
        e = min(total, s + CHUNK)
        u = user[s:e]
        own = rng.random(e - s) < config.affinity_share
        which = taste[u, rng.integers(0, 2, e - s)]
        low = np.repeat(np.where(own, cluster_low[which], 0.0), config.choices)
        width = np.repeat(np.where(own, cluster_total[which], cum[-1]), config.choices)
        # Of ``choices`` items drawn by popularity, the user takes the one closest to their taste.
        offered = by_cluster[_draw(cum, low, width, rng)].reshape(e - s, config.choices)
        fit = np.einsum("ikj,ij->ik", emb[offered], user_vec[u])
        pick = fit.argmax(axis=1)
        it = offered[np.arange(e - s), pick]
        affinity = fit[np.arange(e - s), pick]
        rating = np.clip(np.round(1.0 + 4.0 * affinity + rng.normal(0.0, 0.7, e - s)), 1, 5)
        item[s:e], value[s:e] = it, rating
        progress.update(e - s)

    # Timestamps: each user's history is a run of exponential gaps scaled into their own window.
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    gaps = rng.exponential(1.0, total)
    cs = np.cumsum(gaps)
    base = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0.0)
    span_u = rng.uniform(2 * 86400.0, SPAN_S / 2, n_users)
    begin = START_TS + rng.uniform(0.0, SPAN_S - span_u)
    frac = (cs - base[user]) / (cs[starts + counts - 1] - base)[user]
    ts = begin[user] + frac * span_u[user]
    return Interactions(
        user_ids=[f"user-{u}" for u in range(n_users)],
        user=user,
        item=item,
        value=value,
        positive=value >= 4.0,
        timestamp=ts,
    )


def generate(config: LargeSynthConfig) -> LargeSynth:
    """Generate the catalog, the embeddings and the interactions (about 20 per user)."""
    rng = np.random.default_rng(config.seed)
    centres, item_cluster, emb, pop = _items(config, rng)
    catalog, item_genre = _catalog(config, item_cluster, rng)
    expected = int(config.users * config.mean_interactions)
    with tqdm(total=expected, desc="interactions", unit="row", unit_scale=True, leave=False) as progress:
        interactions = _interactions(config, centres, item_cluster, emb, pop, rng, progress)
    return LargeSynth(catalog, emb, item_genre, interactions)
