"""hotpath.IvfIndex against the NumPy reference and an exact search; recall on clustered data; errors; the GIL;
IvfIndex.open of the bundle files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import hotpath
from hotpath import reference
from tests.hotpath.conftest import overlapping
from trainer import ivf

DIM = 24


def clustered(rng: np.random.Generator, n: int, clusters: int, spread: float = 0.35) -> np.ndarray:
    """Unit-norm rows around ``clusters`` random centres (the shape of real item embeddings)."""
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    rows = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, DIM)).astype(np.float32)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def built(rng: np.random.Generator, n: int = 3000, nlist: int = 40) -> tuple[ivf.Ivf, np.ndarray]:
    emb = clustered(rng, n, 60)
    return ivf.build_ivf(emb, ivf.IvfConfig(nlist=nlist)), emb


def exact(emb: np.ndarray, vector: np.ndarray, k: int) -> np.ndarray:
    scores = emb @ vector
    return np.lexsort((np.arange(len(emb)), -scores.astype(np.float64)))[:k].astype(np.uint32)


def test_every_list_and_every_item_rescored_equals_an_exact_search(rng: np.random.Generator) -> None:
    lists, emb = built(rng)
    index = lists.index(emb)
    assert (len(index), index.ndim, index.nlist) == (len(emb), DIM, 40)
    for vector in clustered(rng, 20, 5):
        items, scores = index.search(vector, 50, nprobe=index.nlist, rescore=len(emb))
        np.testing.assert_array_equal(items, exact(emb, vector, 50))
        np.testing.assert_allclose(scores, emb[items] @ vector, rtol=0, atol=1e-5)
        assert items.dtype == np.uint32 and scores.dtype == np.float32


def test_search_equals_the_numpy_reference(rng: np.random.Generator) -> None:
    lists, emb = built(rng)
    index = lists.index(emb)
    tables = (lists.centroids, lists.offsets, lists.items, lists.codes, lists.scale, emb)
    for vector in clustered(rng, 20, 5):
        for nprobe, rescore in ((1, 10_000), (4, 10_000), (7, 10_000), (40, 10_000)):
            items, scores = index.search(vector, 30, nprobe=nprobe, rescore=rescore)
            ref_items, ref_scores = reference.ivf_search(*tables, vector, 30, nprobe, rescore)
            np.testing.assert_array_equal(items, ref_items)
            np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)


def test_recall_at_the_default_search_depth_on_clustered_data(rng: np.random.Generator) -> None:
    """At the node's setting (nprobe and rescore of trainer.ivf) on a catalog with the rule's nlist."""
    emb = clustered(rng, 40_000, 400)
    index = ivf.build_ivf(emb).index(emb)
    search = ivf.ivf_search(index)
    k, recalls = 200, []
    for vector in clustered(rng, 50, 20):
        items, _ = search(vector, k)
        recalls.append(len(np.intersect1d(items, exact(emb, vector, k))) / k)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


def test_k_is_clamped_zero_is_empty_and_nprobe_past_nlist_scans_every_list(rng: np.random.Generator) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    index = lists.index(emb)
    vector = emb[3]
    assert len(index.search(vector, 0, nprobe=2, rescore=0)[0]) == 0
    items, _ = index.search(vector, 10_000, nprobe=99, rescore=0)
    np.testing.assert_array_equal(np.sort(items), np.arange(500))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ix, v: ix.search(v[:-1], 5, nprobe=2, rescore=10), "vector"),
        (lambda ix, v: ix.search(v, 5, nprobe=0, rescore=10), "nprobe"),
        (lambda ix, v: ix.search(v, -1, nprobe=2, rescore=10), "k"),
        (lambda ix, v: ix.search(v, 5, nprobe=-2, rescore=10), "nprobe: must be >= 0"),
        (lambda ix, v: ix.search(v, 5, nprobe=2, rescore=-1), "rescore"),
        (lambda ix, v: ix.search(np.full_like(v, np.nan), 5, nprobe=2, rescore=10), "not finite"),
    ],
    ids=["short vector", "nprobe 0", "negative k", "negative nprobe", "negative rescore", "nan"],
)
def test_bad_searches_raise_shape_errors(rng: np.random.Generator, call: object, match: str) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    index = lists.index(emb)
    with pytest.raises(hotpath.ShapeError, match=match):
        call(index, emb[0])  # type: ignore[operator]


def test_a_float64_vector_is_a_layout_error(rng: np.random.Generator) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    with pytest.raises(hotpath.LayoutError, match="vector"):
        lists.index(emb).search(emb[0].astype(np.float64), 5, nprobe=2, rescore=10)


def test_bad_tables_raise_errors_naming_the_array(rng: np.random.Generator) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    args = [lists.centroids, lists.offsets, lists.items, lists.codes, lists.scale, emb]
    twice = lists.items.copy()
    twice[1] = twice[0]
    shuffled_offsets = lists.offsets.copy()
    shuffled_offsets[[2, 3]] = shuffled_offsets[[3, 2]]
    for position, bad, match, error in (
        (1, lists.offsets[:-1], "offsets", hotpath.ShapeError),
        (1, shuffled_offsets, "offsets", hotpath.ShapeError),
        (2, twice, "twice", hotpath.ShapeError),
        (3, lists.codes[:-1], "codes", hotpath.ShapeError),
        (3, lists.codes.astype(np.int16), "codes", hotpath.LayoutError),
        (4, lists.scale[:-1], "scale", hotpath.ShapeError),
        (5, emb[:-1], "vectors", hotpath.ShapeError),
        (5, np.asfortranarray(emb), "vectors", hotpath.LayoutError),
    ):
        wrong = list(args)
        wrong[position] = bad
        with pytest.raises(error, match=match):
            hotpath.IvfIndex(*wrong)


def test_searches_from_two_threads_overlap(rng: np.random.Generator, no_forced_switches: None) -> None:
    emb = clustered(rng, 60_000, 100)
    index = ivf.build_ivf(emb, ivf.IvfConfig(nlist=50)).index(emb)
    vector = emb[0]

    def call() -> object:
        return index.search(vector, 2000, nprobe=50, rescore=60_000)

    assert overlapping(call), "no two IVF searches overlapped: the search seems to hold the GIL"


def test_construction_from_two_threads_overlaps(no_forced_switches: None) -> None:
    """One list of a million items: the checks and the copy of the codes run with the GIL released."""
    n = 1_000_000
    vectors = np.zeros((n, DIM), np.float32)
    tables = (np.ones((1, DIM), np.float32), np.array([0, n], np.uint32), np.arange(n, dtype=np.uint32))
    codes, scale = np.zeros((n, DIM), np.int8), np.ones(DIM, np.float32)

    def call() -> object:
        return hotpath.IvfIndex(*tables, codes, scale, vectors)

    assert overlapping(call, calls=2), "no two IvfIndex constructions overlapped: the copy seems to hold the GIL"


# --- IvfIndex.open: the bundle's files, mapped -----------------------------------


def saved(lists: ivf.Ivf, directory: Path) -> Path:
    """The five files as the trainer's bundle writer saves them."""
    directory.mkdir(exist_ok=True)
    for name, array in lists.arrays().items():
        np.save(directory / name, np.ascontiguousarray(array), allow_pickle=False)
    return directory


def test_open_maps_the_files_and_searches_as_the_copied_arrays_bit_for_bit(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    lists, emb = built(rng)
    mapped = hotpath.IvfIndex.open(saved(lists, tmp_path), emb, DIM)
    copied = lists.index(emb)
    assert (len(mapped), mapped.ndim, mapped.nlist) == (len(copied), copied.ndim, copied.nlist) == (len(emb), DIM, 40)
    assert repr(mapped) == repr(copied)
    files = {str((tmp_path / name).resolve()) for name in ivf.FILES}
    assert files <= set(Path("/proc/self/maps").read_text().split()), "the files are not mapped"
    for vector in clustered(rng, 20, 5):
        for k, nprobe, rescore in ((30, 1, 60), (30, 4, 10_000), (200, 40, 400), (len(emb), 40, 0)):
            got = mapped.search(vector, k, nprobe=nprobe, rescore=rescore)
            want = copied.search(vector, k, nprobe=nprobe, rescore=rescore)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1].view(np.uint32), want[1].view(np.uint32))


def test_open_reads_rows_longer_than_the_embedding_by_their_first_ndim_values(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    packed = np.full((len(emb), DIM + 7), 9.0, np.float32)
    packed[:, :DIM] = emb
    mapped = hotpath.IvfIndex.open(saved(lists, tmp_path), packed, DIM)
    vector = clustered(rng, 1, 2)[0]
    got = mapped.search(vector, 20, nprobe=3, rescore=40)
    want = lists.index(emb).search(vector, 20, nprobe=3, rescore=40)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def _missing_item(items: np.ndarray) -> np.ndarray:
    out = items.copy()
    out[5] = out[4]
    return out


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "ivf_codes.npy",
            lambda path, a: path.write_bytes(path.read_bytes()[:-5]),
            r"\d+ bytes, expected \d+ \(500 rows of 24 i8 values after a 128-byte header\)$",
        ),
        ("ivf_codes.npy", lambda path, a: np.save(path, a.astype(np.int16)), r"dtype is not i8: \{'descr': '<i2'"),
        ("ivf_codes.npy", lambda path, a: np.save(path, a.astype(np.uint8)), r"dtype is not i8: \{'descr': '\|u1'"),
        ("ivf_codes.npy", lambda path, a: np.save(path, a[:, :-1]), r"shape \[500, 23\], expected \[500, 24\]"),
        ("ivf_codes.npy", lambda path, a: np.save(path, a.reshape(-1)), r"shape \[12000\], expected \[500, 24\]"),
        (
            "ivf_codes.npy",
            lambda path, a: np.save(path, np.asfortranarray(a)),
            "rows are in Fortran order, expected C order$",
        ),
        (
            "ivf_items.npy",
            lambda path, a: np.save(path, _missing_item(a)),
            r"items\[5\] = \d+ is in the lists twice, and item \d+ in none$",
        ),
        (
            "ivf_items.npy",
            lambda path, a: np.save(path, a[:-1]),
            r"shape \[499\], expected \[500\] \(every item once\)$",
        ),
        ("ivf_items.npy", lambda path, a: np.save(path, a.astype(np.int64)), "dtype is not little-endian u32"),
        ("ivf_offsets.npy", lambda path, a: np.save(path, a[::-1].copy()), r"offsets\[0\] = 500, expected 0$"),
        (
            "ivf_centroids.npy",
            lambda path, a: np.save(path, a[:, :-1]),
            r"shape \[10, 23\], expected \[nlist >= 1, 24\]",
        ),
        ("ivf_scale.npy", lambda path, a: np.save(path, -a), r"scale\[0\] = -[0-9.e-]+ is not a finite value >= 0$"),
        ("ivf_scale.npy", lambda path, a: path.write_bytes(b"not numpy"), r"not a \.npy file \(no NumPy magic\)$"),
        ("ivf_scale.npy", lambda path, a: path.unlink(), "No such file"),
    ],
    ids=[
        "truncated codes",
        "int16 codes",
        "uint8 codes",
        "codes a dimension short",
        "1-d codes",
        "Fortran-ordered codes",
        "an item missing from the lists",
        "an item short",
        "int64 items",
        "offsets backwards",
        "centroids of another dimension",
        "a negative scale",
        "not npy",
        "no file",
    ],
)
def test_a_bad_file_raises_ivf_index_error_naming_it(
    rng: np.random.Generator, tmp_path: Path, name: str, edit: Callable[[Path, np.ndarray], object], message: str
) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    directory = saved(lists, tmp_path)
    edit(directory / name, np.load(directory / name))
    assert issubclass(hotpath.IvfIndexError, hotpath.HotpathError) and issubclass(hotpath.IvfIndexError, OSError)
    with pytest.raises(hotpath.IvfIndexError, match=rf"^{re.escape(str(directory / name))}: {message}"):
        hotpath.IvfIndex.open(directory, emb, DIM)


def test_open_checks_the_vectors_and_the_dimension(rng: np.random.Generator, tmp_path: Path) -> None:
    lists, emb = built(rng, n=500, nlist=10)
    directory = saved(lists, tmp_path)
    with pytest.raises(hotpath.IvfIndexError, match=r"ivf_items\.npy: shape \[500\], expected \[499\]"):
        hotpath.IvfIndex.open(directory, emb[:-1], DIM)
    with pytest.raises(hotpath.ShapeError, match="vectors: rows of 24 values cannot hold 25 dimensions"):
        hotpath.IvfIndex.open(directory, emb, DIM + 1)
    with pytest.raises(
        hotpath.IvfIndexError, match=r"ivf_centroids\.npy: shape \[10, 24\], expected \[nlist >= 1, 23\]"
    ):
        hotpath.IvfIndex.open(directory, emb, DIM - 1)
    with pytest.raises(hotpath.ShapeError, match="ndim: must be >= 1"):
        hotpath.IvfIndex.open(directory, emb, 0)
    with pytest.raises(hotpath.LayoutError, match="vectors"):
        hotpath.IvfIndex.open(directory, np.asfortranarray(emb), DIM)
    with pytest.raises(hotpath.LayoutError, match="vectors"):
        hotpath.IvfIndex.open(directory, emb.astype(np.float64), DIM)


def test_open_from_two_threads_overlaps(tmp_path: Path, no_forced_switches: None) -> None:
    """One list of a million items: the maps and their checks (every item once) run with the GIL released."""
    n = 1_000_000
    lists = ivf.Ivf(
        np.ones((1, DIM), np.float32),
        np.array([0, n], np.uint32),
        np.arange(n, dtype=np.uint32),
        np.zeros((n, DIM), np.int8),
        np.ones(DIM, np.float32),
    )
    directory = saved(lists, tmp_path)
    vectors = np.zeros((n, DIM), np.float32)

    def call() -> object:
        return hotpath.IvfIndex.open(directory, vectors, DIM)

    assert overlapping(call, calls=2), "no two IvfIndex.open calls overlapped: the checks seem to hold the GIL"
