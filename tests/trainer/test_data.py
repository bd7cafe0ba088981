"""The generic CSV format and the MovieLens preset (trainer.data)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from trainer.data import MOVIELENS_SMALL, load_generic, load_interactions, load_items, load_movielens
from trainer.errors import DataError

ITEMS = """item_id,title,genres,tags
a,Alpha (1995),Action|Comedy,funny|classic
b,Beta,(no genres listed),
c,Gamma (2001) ,Drama,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def items_csv(tmp_path: Path) -> Path:
    return write(tmp_path / "items.csv", ITEMS)


def test_items_genres_tags_and_year_from_title(items_csv: Path) -> None:
    cat = load_items(items_csv)
    assert cat.item_ids == ["a", "b", "c"]
    assert cat.index == {"a": 0, "b": 1, "c": 2}
    assert cat.titles == ["Alpha (1995)", "Beta", "Gamma (2001)"]
    assert cat.genres == [["Action", "Comedy"], [], ["Drama"]]
    assert cat.tags == [["funny", "classic"], [], []]
    assert cat.years[0] == 1995.0 and math.isnan(cat.years[1]) and cat.years[2] == 2001.0
    assert len(cat) == 3


def test_items_year_column_wins_over_title_and_empty_genres(tmp_path: Path) -> None:
    path = write(
        tmp_path / "items.csv",
        "item_id,title,genres,year,extra\nx,Old (1950),,1960,ignored\ny,New (1999),Sci-Fi| Horror ,,\n",
    )
    cat = load_items(path)
    assert cat.years.tolist() == [1960.0, 1999.0]  # the column first, else the title
    assert cat.genres == [[], ["Sci-Fi", "Horror"]]
    assert cat.tags == [[], []]


def test_extra_tags_are_appended(items_csv: Path) -> None:
    cat = load_items(items_csv, {"b": ["moody"], "a": ["quotable"]})
    assert cat.tags[0] == ["funny", "classic", "quotable"]
    assert cat.tags[1] == ["moody"]


def test_interactions_with_rating_and_threshold(tmp_path: Path, items_csv: Path) -> None:
    inter = write(
        tmp_path / "inter.csv",
        "user_id,item_id,timestamp,rating\nu2,a,100,5\nu1,b,300,3.5\nu1,a,200,4\n",
    )
    data = load_generic(inter, items_csv)
    assert data.name == "inter"
    it = data.interactions
    assert it.user_ids == ["u2", "u1"]
    assert it.user.tolist() == [0, 1, 1]
    assert it.item.tolist() == [0, 0, 1]
    assert it.timestamp.tolist() == [100.0, 200.0, 300.0]
    assert it.value.tolist() == [5.0, 4.0, 3.5]
    assert it.positive.tolist() == [True, True, False]
    lenient = load_generic(inter, items_csv, positive_threshold=3.5).interactions
    assert lenient.positive.tolist() == [True, True, True]
    strict = load_generic(inter, items_csv, positive_threshold=4.5).interactions
    assert strict.positive.tolist() == [True, False, False]
    assert it.user.dtype == np.int64 and it.item.dtype == np.int64
    assert it.value.dtype == np.float64 and it.timestamp.dtype == np.float64


def test_interactions_with_label(tmp_path: Path, items_csv: Path) -> None:
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,label\nu,a,1,1\nu,b,2,0\nu,c,3,1.0\n")
    it = load_interactions(inter, load_items(items_csv), positive_threshold=99.0)
    assert it.value.tolist() == [1.0, 0.0, 1.0]
    assert it.positive.tolist() == [True, False, True]  # labels ignore the threshold


def test_rows_sorted_by_user_time_then_item_id(tmp_path: Path, items_csv: Path) -> None:
    inter = write(
        tmp_path / "inter.csv",
        "user_id,item_id,timestamp,rating\nu1,c,50,4\nu2,b,10,4\nu1,b,50,4\nu1,a,60,4\nu2,a,10,4\nu1,a,40,4\n",
    )
    it = load_generic(inter, items_csv).interactions
    assert it.user_ids == ["u1", "u2"]
    cat_ids = ["a", "b", "c"]
    rows = [(it.user_ids[u], t, cat_ids[i]) for u, t, i in zip(it.user, it.timestamp, it.item, strict=True)]
    assert rows == [
        ("u1", 40.0, "a"),
        ("u1", 50.0, "b"),
        ("u1", 50.0, "c"),
        ("u1", 60.0, "a"),
        ("u2", 10.0, "a"),
        ("u2", 10.0, "b"),
    ]


def test_tie_break_is_item_id_not_catalog_order(tmp_path: Path) -> None:
    items = write(tmp_path / "items.csv", "item_id,title,genres\nz,Z,\ny,Y,\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\nu,z,5,1\nu,y,5,1\n")
    it = load_generic(inter, items).interactions
    assert it.item.tolist() == [1, 0]  # "y" < "z"


def test_subset_keeps_users(tmp_path: Path, items_csv: Path) -> None:
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\nu,a,1,5\nv,b,2,1\n")
    it = load_generic(inter, items_csv).interactions
    sub = it.subset(np.array([False, True]))
    assert sub.user_ids == it.user_ids and sub.user.tolist() == [1] and len(sub) == 1


# -- errors: DataError naming the file (and line) and the problem ----------------


def data_error(func, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as info:
        func(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("title,genres", "'item_id'"),
        ("item_id,genres", "'title'"),
        ("item_id,title", "'genres'"),
    ],
)
def test_items_missing_column(tmp_path: Path, header: str, missing: str) -> None:
    path = write(tmp_path / "items.csv", header + "\nx,y\n")
    msg = data_error(load_items, path)
    assert msg.startswith(f"{path}: ") and "missing column" in msg and missing in msg


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("item_id,timestamp,rating", "'user_id'"),
        ("user_id,timestamp,rating", "'item_id'"),
        ("user_id,item_id,rating", "'timestamp'"),
        ("user_id,item_id,timestamp", "'rating' or 'label'"),
    ],
)
def test_interactions_missing_column(tmp_path: Path, items_csv: Path, header: str, missing: str) -> None:
    path = write(tmp_path / "inter.csv", header + "\n1,2,3\n")
    msg = data_error(load_generic, path, items_csv)
    assert msg.startswith(f"{path}: ") and "missing column" in msg and missing in msg


def test_unknown_item_id(tmp_path: Path, items_csv: Path) -> None:
    path = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\nu,a,1,4\nu,zzz,2,4\n")
    msg = data_error(load_generic, path, items_csv)
    assert msg.startswith(f"{path}:3: ") and "'zzz'" in msg and "not in the items file" in msg


@pytest.mark.parametrize(
    ("row", "bad"),
    [("u,a,yesterday,4", "yesterday"), ("u,a,1,four", "four"), ("u,a,1,", "")],
)
def test_bad_number(tmp_path: Path, items_csv: Path, row: str, bad: str) -> None:
    path = write(tmp_path / "inter.csv", f"user_id,item_id,timestamp,rating\nu,a,1,4\n{row}\n")
    msg = data_error(load_generic, path, items_csv)
    assert msg.startswith(f"{path}:3: ")
    assert f"'{bad}'" in msg  # float()'s message quotes the bad text


@pytest.mark.parametrize("stamp", ["nan", "inf"])
def test_non_finite_number(tmp_path: Path, items_csv: Path, stamp: str) -> None:
    path = write(tmp_path / "inter.csv", f"user_id,item_id,timestamp,rating\nu,a,{stamp},4\n")
    msg = data_error(load_generic, path, items_csv)
    assert msg.startswith(f"{path}:2: ") and "finite" in msg


def test_bad_year(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "item_id,title,genres,year\na,A,,1999\nb,B,,soon\n")
    msg = data_error(load_items, path)
    assert msg.startswith(f"{path}:3: ") and "year is not a number" in msg and "'soon'" in msg


def test_duplicate_item(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "item_id,title,genres\na,A,\nb,B,\na,A again,\n")
    msg = data_error(load_items, path)
    assert msg.startswith(f"{path}:4: ") and "duplicate item_id 'a'" in msg


@pytest.mark.parametrize("label", ["2", "0.5", "-1"])
def test_label_not_0_or_1(tmp_path: Path, items_csv: Path, label: str) -> None:
    path = write(tmp_path / "inter.csv", f"user_id,item_id,timestamp,label\nu,a,1,1\nu,b,2,{label}\n")
    msg = data_error(load_generic, path, items_csv)
    assert msg.startswith(f"{path}:3: ") and "label must be 0 or 1" in msg and repr(label) in msg


def test_short_row(tmp_path: Path, items_csv: Path) -> None:
    path = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\nu,a\n")
    msg = data_error(load_generic, path, items_csv)
    assert msg.startswith(f"{path}:2: ") and "expected 4 fields, got 2" in msg


def test_empty_ids(tmp_path: Path, items_csv: Path) -> None:
    items = write(tmp_path / "bad_items.csv", "item_id,title,genres\n ,A,\n")
    assert "empty item_id" in data_error(load_items, items)
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\n,a,1,4\n")
    msg = data_error(load_generic, inter, items_csv)
    assert msg.startswith(f"{inter}:2: ") and "empty user_id" in msg


def test_empty_files(tmp_path: Path, items_csv: Path) -> None:
    empty = write(tmp_path / "empty.csv", "")
    assert data_error(load_items, empty) == f"{empty}: empty file"
    assert data_error(load_generic, empty, items_csv) == f"{empty}: empty file"
    header_only = write(tmp_path / "header.csv", "item_id,title,genres\n")
    assert data_error(load_items, header_only) == f"{header_only}: no items"
    no_rows = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\n\n")
    assert data_error(load_generic, no_rows, items_csv) == f"{no_rows}: no interactions"


def test_missing_file_and_bad_encoding(tmp_path: Path, items_csv: Path) -> None:
    nowhere = tmp_path / "nowhere.csv"
    assert data_error(load_items, nowhere) == f"{nowhere}: no such file"
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("item_id,title,genres\na,Caf\xe9,\n".encode("latin-1"))
    msg = data_error(load_items, latin1)
    assert msg.startswith(f"{latin1}: not UTF-8")


def test_data_error_is_a_value_error() -> None:
    assert issubclass(DataError, ValueError)


# -- the MovieLens preset --------------------------------------------------------


def test_movielens_preset_loads_the_carried_copy() -> None:
    data = load_movielens()
    assert data.name == MOVIELENS_SMALL.name
    assert (MOVIELENS_SMALL / "README.txt").is_file()
    cat, it = data.catalog, data.interactions
    assert len(cat) == 9742
    assert len(it) == 100836
    assert len(it.user_ids) == 610 and len(np.unique(it.user)) == 610
    toy = cat.index["1"]
    assert cat.titles[toy] == "Toy Story (1995)"
    assert cat.years[toy] == 1995.0
    assert cat.genres[toy] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert "pixar" in cat.tags[toy]  # tags.csv, lower-cased
    assert not any("(no genres listed)" in g for g in cat.genres)
    # sorted by (user, timestamp, item id)
    keys = list(zip(it.user.tolist(), it.timestamp.tolist(), [cat.item_ids[i] for i in it.item], strict=True))
    assert keys == sorted(keys)
    assert it.positive.sum() == int((it.value >= 4.0).sum())
    assert set(np.unique(it.value).tolist()) <= {0.5 * k for k in range(1, 11)}
