"""hotpath.AnnIndex against the usearch wheel on the same file, its errors, its threads and the GIL."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from usearch.index import Index

from hotpath import AnnIndex, AnnIndexError, LayoutError, ShapeError
from tests.hotpath.conftest import overlapping
from trainer.candidates import ann_search, index_search

N, DIM = 3_000, 24


def build(path: Path, rng: np.random.Generator, n: int = N, dim: int = DIM, **kwargs: object) -> np.ndarray:
    """A usearch index built and saved by the Python wheel, as the trainer does; returns the vectors."""
    emb = (rng.standard_normal((n, dim)) / np.sqrt(dim)).astype(np.float32)
    options: dict[str, object] = {"metric": "ip", "dtype": "f16", "connectivity": 16, "expansion_add": 64}
    options.update(kwargs)
    index = Index(ndim=dim, **options)  # type: ignore[arg-type]
    index.add(np.arange(n, dtype=np.uint64), emb, threads=1)
    index.save(str(path))
    return emb


def wheel_view(path: Path, expansion: int) -> Index:
    meta = Index.metadata(str(path))
    assert meta is not None
    index = Index(ndim=meta["dimensions"], dtype=meta["kind_scalar"], metric=meta["kind_metric"])
    index.view(str(path))
    setattr(index, "expansion_search", expansion)  # noqa: B010 - a setter mypy cannot see
    return index


@pytest.fixture
def index_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    path = tmp_path / "index.usearch"
    return path, build(path, np.random.default_rng(7))


@pytest.mark.parametrize(("dtype", "metric", "expansion"), [("f16", "ip", 16), ("f16", "ip", 200), ("f32", "cos", 64)])
def test_same_keys_and_scores_as_the_wheel(tmp_path: Path, dtype: str, metric: str, expansion: int) -> None:
    rng = np.random.default_rng(expansion)
    path = tmp_path / "index.usearch"
    emb = build(path, rng, dtype=dtype, metric=metric)
    ours = AnnIndex.open(path)
    ours.expansion_search = expansion
    assert (len(ours), ours.ndim, ours.metric, ours.dtype, ours.expansion_search) == (N, DIM, metric, dtype, expansion)
    theirs, mine = index_search(wheel_view(path, expansion)), ann_search(ours)
    queries = np.concatenate([rng.standard_normal((150, DIM)).astype(np.float32), emb[:50]])
    for i, query in enumerate(queries):
        k = int(rng.integers(1, 400))
        keys, scores = mine(query, k)
        want_keys, want_scores = theirs(query, k)
        assert keys.dtype == np.uint32 and scores.dtype == np.float32
        np.testing.assert_array_equal(keys, want_keys, err_msg=f"query {i}, k={k}")
        np.testing.assert_array_equal(scores, want_scores, err_msg=f"query {i}, k={k}")
    # The scores are the similarities themselves: the dot product (ip) or the cosine (cos), to f16 precision.
    keys, scores = mine(emb[11], 20)
    vectors = emb[keys.astype(np.int64)]
    dots = vectors @ emb[11]
    if metric == "cos":
        dots = dots / np.linalg.norm(vectors, axis=1) / np.linalg.norm(emb[11])
    np.testing.assert_allclose(scores, dots, atol=2e-3)


def test_depth_past_the_index_zero_and_negative(index_file: tuple[Path, np.ndarray]) -> None:
    path, emb = index_file
    ours, theirs = ann_search(AnnIndex.open(path)), index_search(wheel_view(path, 64))
    for k in (N, N + 1, 10 * N):
        keys, scores = ours(emb[0], k)
        assert len(keys) == len(scores) == N
        np.testing.assert_array_equal(keys, theirs(emb[0], k)[0])
        assert set(keys.tolist()) == set(range(N))
    for k in (0, -1, -1000):
        keys, scores = ours(emb[0], k)
        assert (len(keys), len(scores), keys.dtype, scores.dtype) == (0, 0, np.uint32, np.float32)
    with pytest.raises(ShapeError, match="k: must be >= 0, got -1"):
        AnnIndex.open(path).search(emb[0], -1)


def test_wrong_vectors_name_the_field(index_file: tuple[Path, np.ndarray]) -> None:
    path, emb = index_file
    index = AnnIndex.open(path)
    with pytest.raises(ShapeError, match=f"vector: expected length {DIM}, got {DIM - 1}"):
        index.search(emb[0][:-1], 5)
    with pytest.raises(ShapeError, match="vector: expected a 1-D array"):
        index.search(emb[:2], 5)
    with pytest.raises(LayoutError, match="vector: expected dtype float32"):
        index.search(emb[0].astype(np.float64), 5)
    # The node's search casts what is not f32 (as usearch did) but still checks the length.
    keys, _ = ann_search(index)(emb[3].astype(np.float64), 10)
    np.testing.assert_array_equal(keys, index.search(emb[3], 10)[0])
    with pytest.raises(ShapeError, match="vector: expected length"):
        ann_search(index)(np.zeros(DIM + 2), 5)


def test_files_that_are_not_an_index(tmp_path: Path) -> None:
    junk = tmp_path / "junk.usearch"
    junk.write_bytes(b"not an index at all" * 100)
    with pytest.raises(AnnIndexError, match=f"{junk}: not a usearch index"):
        AnnIndex.open(junk)
    with pytest.raises(AnnIndexError, match=f"{tmp_path / 'missing.usearch'}: No such file"):
        AnnIndex.open(tmp_path / "missing.usearch")
    with pytest.raises(AnnIndexError, match=f"{tmp_path}: not a regular file"):
        AnnIndex.open(tmp_path)
    empty = tmp_path / "empty.usearch"
    empty.write_bytes(b"")
    with pytest.raises(AnnIndexError, match=str(empty)):
        AnnIndex.open(empty)
    assert issubclass(AnnIndexError, OSError)


def test_truncated_index_is_refused(index_file: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, _ = index_file
    cut = tmp_path / "cut.usearch"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AnnIndexError, match=str(cut)):
        AnnIndex.open(cut)


def test_bad_settings(index_file: tuple[Path, np.ndarray]) -> None:
    path, _ = index_file
    with pytest.raises(ShapeError, match="threads: must be >= 1, got 0"):
        AnnIndex.open(path, threads=0)
    with pytest.raises(ShapeError, match="threads: must be >= 0, got -2"):
        AnnIndex.open(path, threads=-2)
    index = AnnIndex.open(path)
    with pytest.raises(ShapeError, match="expansion_search: must be >= 1, got 0"):
        index.expansion_search = 0
    index.expansion_search = 77
    assert index.expansion_search == 77
    assert index.threads == 32 and AnnIndex.open(path, threads=3).threads == 3


def test_more_threads_than_slots_wait_for_one(index_file: tuple[Path, np.ndarray]) -> None:
    """Eight threads on two slots: every search succeeds (the C++ index fails one that finds no free slot)."""
    path, emb = index_file
    index = AnnIndex.open(path, threads=2)
    index.expansion_search = 256
    queries = emb[:40]
    expected = [index.search(q, 200) for q in queries]
    errors: list[BaseException] = []
    mismatches: list[int] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                for i, q in enumerate(queries):
                    keys, scores = index.search(q, 200)
                    if not (np.array_equal(keys, expected[i][0]) and np.array_equal(scores, expected[i][1])):
                        mismatches.append(i)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and mismatches == []


def test_changing_expansion_while_searching(index_file: tuple[Path, np.ndarray]) -> None:
    path, emb = index_file
    index = AnnIndex.open(path, threads=2)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            while not stop.is_set():
                keys, _ = index.search(emb[5], 50)
                assert keys[0] == 5
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for expansion in (16, 300, 64, 128) * 10:
        index.expansion_search = expansion
        assert index.expansion_search == expansion
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


def test_open_and_search_release_the_gil(tmp_path: Path, no_forced_switches: None) -> None:
    path = tmp_path / "big.usearch"
    emb = build(path, np.random.default_rng(3), n=20_000, dim=32)
    index = AnnIndex.open(path)
    index.expansion_search = 4_000  # a long search: thousands of distances
    assert overlapping(lambda: index.search(emb[0], 4_000)), "no two searches overlapped: the GIL seems held"
    assert overlapping(lambda: AnnIndex.open(path)), "no two opens overlapped: the GIL seems held"
