"""Interaction and catalog data in edgerank's generic CSV format.

Generic format (UTF-8, comma-separated, one header row; extra columns are
ignored):

* interactions: ``user_id,item_id,timestamp`` plus either ``rating`` (a
  number; ``>= positive_threshold`` counts as positive) or ``label`` (0 or
  1). ``timestamp`` is unix seconds.
* items: ``item_id,title,genres`` with ``genres`` ``|``-separated (or
  empty, or ``(no genres listed)``); optional ``tags`` (``|``-separated) and
  ``year``. Without ``year``, a trailing ``(1995)`` in the title is used.

The MovieLens preset reads ``ratings.csv``, ``movies.csv`` and ``tags.csv``
from a MovieLens directory and maps them onto the same structures. The
project carries ml-latest-small in ``trainer/data/movielens-small``.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainer.errors import DataError

MOVIELENS_SMALL = Path(__file__).parent / "data" / "movielens-small"
NO_GENRES = {"", "(no genres listed)"}
_YEAR = re.compile(r"\((\d{4})\)\s*$")


@dataclass
class Catalog:
    item_ids: list[str]
    titles: list[str]
    genres: list[list[str]]
    tags: list[list[str]]
    years: np.ndarray  # f64, NaN when unknown
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {item: i for i, item in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass
class Interactions:
    """One row per interaction, sorted by (user, timestamp, item id)."""

    user_ids: list[str]  # distinct users; ``user`` indexes into it
    user: np.ndarray  # i64
    item: np.ndarray  # i64, index into the catalog
    value: np.ndarray  # f64, rating or label
    positive: np.ndarray  # bool
    timestamp: np.ndarray  # f64 unix seconds

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask: np.ndarray) -> Interactions:
        return Interactions(
            self.user_ids,
            self.user[mask],
            self.item[mask],
            self.value[mask],
            self.positive[mask],
            self.timestamp[mask],
        )


@dataclass
class Dataset:
    name: str
    catalog: Catalog
    interactions: Interactions


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file")
            return [h.strip() for h in header], list(reader)
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e})") from e


def _column(header: list[str], path: Path, *names: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise DataError(f"{path}: missing column {' or '.join(repr(n) for n in names)}")


def _split_list(text: str) -> list[str]:
    return [g.strip() for g in text.split("|") if g.strip() and g.strip() not in NO_GENRES]


def load_items(
    path: Path,
    extra_tags: dict[str, list[str]] | None = None,
    *,
    columns: dict[str, str] | None = None,
) -> Catalog:
    header, rows = _rows(path)
    c_id = _column(header, path, (columns or {}).get("item_id", "item_id"))
    c_title = _column(header, path, "title")
    c_genres = _column(header, path, "genres")
    c_tags = header.index("tags") if "tags" in header else None
    c_year = header.index("year") if "year" in header else None
    ids, titles, genres, tags, years = [], [], [], [], []
    seen: set[str] = set()
    for n, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            item = row[c_id].strip()
            title = row[c_title].strip()
            genre_text = row[c_genres]
        except IndexError as e:
            raise DataError(f"{path}:{n}: expected {len(header)} fields, got {len(row)}") from e
        if not item:
            raise DataError(f"{path}:{n}: empty item_id")
        if item in seen:
            raise DataError(f"{path}:{n}: duplicate item_id {item!r}")
        seen.add(item)
        year = float("nan")
        if c_year is not None and c_year < len(row) and row[c_year].strip():
            try:
                year = float(row[c_year])
            except ValueError as e:
                raise DataError(f"{path}:{n}: year is not a number: {row[c_year]!r}") from e
        elif m := _YEAR.search(title):
            year = float(m.group(1))
        item_tags = _split_list(row[c_tags]) if c_tags is not None and c_tags < len(row) else []
        item_tags += (extra_tags or {}).get(item, [])
        ids.append(item)
        titles.append(title)
        genres.append(_split_list(genre_text))
        tags.append(item_tags)
        years.append(year)
    if not ids:
        raise DataError(f"{path}: no items")
    return Catalog(ids, titles, genres, tags, np.array(years, dtype=np.float64))


def load_interactions(
    path: Path,
    catalog: Catalog,
    *,
    positive_threshold: float = 4.0,
    columns: dict[str, str] | None = None,
) -> Interactions:
    """Read interactions; ``columns`` maps generic names to the file's names."""
    cols = {"user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp", **(columns or {})}
    header, rows = _rows(path)
    c_user = _column(header, path, cols["user_id"])
    c_item = _column(header, path, cols["item_id"])
    c_ts = _column(header, path, cols["timestamp"])
    rating_col = cols.get("rating", "rating")
    if rating_col in header:
        c_val, is_label = header.index(rating_col), False
    elif "label" in header:
        c_val, is_label = header.index("label"), True
    else:
        raise DataError(f"{path}: missing column 'rating' or 'label'")
    users: dict[str, int] = {}
    u, it, val, ts = [], [], [], []
    for n, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            user, item = row[c_user].strip(), row[c_item].strip()
            value, stamp = float(row[c_val]), float(row[c_ts])
        except IndexError as e:
            raise DataError(f"{path}:{n}: expected {len(header)} fields, got {len(row)}") from e
        except ValueError as e:
            raise DataError(f"{path}:{n}: {e}") from e
        if not user:
            raise DataError(f"{path}:{n}: empty user_id")
        idx = catalog.index.get(item)
        if idx is None:
            raise DataError(f"{path}:{n}: item_id {item!r} is not in the items file")
        if not np.isfinite(value) or not np.isfinite(stamp):
            raise DataError(f"{path}:{n}: rating/label and timestamp must be finite")
        if is_label and value not in (0.0, 1.0):
            raise DataError(f"{path}:{n}: label must be 0 or 1, got {row[c_val]!r}")
        u.append(users.setdefault(user, len(users)))
        it.append(idx)
        val.append(value)
        ts.append(stamp)
    if not u:
        raise DataError(f"{path}: no interactions")
    user_arr = np.array(u, dtype=np.int64)
    item_arr = np.array(it, dtype=np.int64)
    value_arr = np.array(val, dtype=np.float64)
    ts_arr = np.array(ts, dtype=np.float64)
    # Sort by (user, timestamp, item id) - the protocol's tie-break is the item id.
    item_key = np.array(catalog.item_ids, dtype=object)[item_arr]
    order = sorted(range(len(u)), key=lambda k: (u[k], ts[k], item_key[k]))
    o = np.array(order, dtype=np.int64)
    positive = value_arr >= 1.0 if is_label else value_arr >= positive_threshold
    return Interactions(list(users), user_arr[o], item_arr[o], value_arr[o], positive[o], ts_arr[o])


def load_generic(interactions: Path, items: Path, *, positive_threshold: float = 4.0) -> Dataset:
    catalog = load_items(items)
    return Dataset(
        name=interactions.stem,
        catalog=catalog,
        interactions=load_interactions(interactions, catalog, positive_threshold=positive_threshold),
    )


def load_movielens(directory: Path = MOVIELENS_SMALL) -> Dataset:
    """The MovieLens preset (ratings.csv, movies.csv, optional tags.csv)."""
    tags: dict[str, list[str]] = defaultdict(list)
    tag_path = directory / "tags.csv"
    if tag_path.exists():
        header, rows = _rows(tag_path)
        c_item, c_tag = _column(header, tag_path, "movieId"), _column(header, tag_path, "tag")
        for row in rows:
            if len(row) > max(c_item, c_tag) and row[c_tag].strip():
                tags[row[c_item].strip()].append(row[c_tag].strip().lower())
    catalog = load_items(directory / "movies.csv", tags, columns={"item_id": "movieId"})
    interactions = load_interactions(
        directory / "ratings.csv",
        catalog,
        columns={"user_id": "userId", "item_id": "movieId", "timestamp": "timestamp", "rating": "rating"},
    )
    return Dataset(name=directory.name, catalog=catalog, interactions=interactions)
