"""Synthetic catalogs and interactions with realistic skew, in the generic CSV format.

Items sit in clusters of a latent space (each cluster has a main genre) and
have Zipf-distributed popularity; each user prefers a few clusters. A user's
interactions are drawn from ``popularity * exp(affinity)``, timestamps grow
through each user's history, and the rating reflects the affinity, so that
both collaborative and content signals carry information.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GENRES = (
    "Action", "Comedy", "Drama", "Thriller", "Romance", "Sci-Fi", "Horror", "Documentary",
    "Animation", "Crime", "Fantasy", "Music",
)  # fmt: skip
START_TS = 1_500_000_000.0


@dataclass(frozen=True)
class SynthConfig:
    users: int = 300
    items: int = 500
    interactions_per_user: int = 40
    clusters: int = 12
    dim: int = 16
    zipf: float = 1.1
    seed: int = 0


def write_synthetic(directory: Path, config: SynthConfig) -> tuple[Path, Path]:
    """Write ``interactions.csv`` and ``items.csv``; return their paths."""
    rng = np.random.default_rng(config.seed)
    directory.mkdir(parents=True, exist_ok=True)
    centers = rng.standard_normal((config.clusters, config.dim))
    item_cluster = rng.integers(0, config.clusters, config.items)
    item_vec = centers[item_cluster] + 0.5 * rng.standard_normal((config.items, config.dim))
    pop = 1.0 / np.arange(1, config.items + 1) ** config.zipf
    pop = pop[rng.permutation(config.items)]
    items_path = directory / "items.csv"
    with open(items_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "genres", "tags", "year"])
        for i in range(config.items):
            main = GENRES[item_cluster[i] % len(GENRES)]
            extra = GENRES[rng.integers(0, len(GENRES))]
            genres = main if extra == main or rng.random() < 0.5 else f"{main}|{extra}"
            tag = f"c{item_cluster[i]}" if rng.random() < 0.3 else ""
            w.writerow([f"item-{i}", f"Synthetic item {i}", genres, tag, 1980 + int(rng.integers(0, 40))])
    inter_path = directory / "interactions.csv"
    with open(inter_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "rating", "timestamp"])
        for u in range(config.users):
            prefs = centers[rng.choice(config.clusters, size=2, replace=False)].mean(axis=0)
            affinity = item_vec @ prefs / np.sqrt(config.dim)
            p = pop * np.exp(2.0 * affinity)
            p /= p.sum()
            n = max(5, int(rng.poisson(config.interactions_per_user)))
            chosen = rng.choice(config.items, size=min(n, config.items), replace=False, p=p)
            ts = START_TS + np.sort(rng.uniform(0, 3e7, len(chosen)))
            for i, t in zip(chosen, ts, strict=True):
                rating = float(np.clip(np.round(2.6 + 1.2 * affinity[i] + rng.normal(0, 0.7)), 1, 5))
                w.writerow([f"user-{u}", f"item-{i}", rating, int(t)])
    return inter_path, items_path
