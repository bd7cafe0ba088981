"""Loading and refusing bundles."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hotpath
from hotpath import reference
from node import bundle as node_bundle
from node.bundle import LoadedBundle
from node.prefault import mappings, prefault
from node.server import Node
from tests.node.conftest import node_settings
from tests.node.synthetic_bundle import bundle_items, make_bundle
from tests.node.test_prefault import smaps_kib
from trainer import ivf
from trainer.bundle import BundleError, resolve
from trainer.ivf import load as load_ivf


def copy_bundle(bundle_root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(resolve(bundle_root), target)
    return target


def flip_byte(path: Path, offset: int = -3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_load_resolves_root_and_dir(bundle_root: Path) -> None:
    via_root = LoadedBundle.load(bundle_root)
    via_dir = LoadedBundle.load(resolve(bundle_root))
    assert via_root.version == via_dir.version
    assert via_root.n_items == 2000 and len(via_root.user_ids) == 300
    assert via_root.surfaces == {
        "home": "global",
        "trending": "trending",
        "new": "fresh",
    }
    items, scores = via_root.search(via_root.item_emb[7], 5)
    assert items[0] == 7 and scores[0] == pytest.approx(1.0, abs=1e-5)
    via_root.warm_up()


@pytest.mark.parametrize(
    "name", ["user_emb.npy", "item_rows.npy", "item_id_order.npy", "ranker.onnx", "popularity.json", "index.usearch"]
)
def test_corrupted_file_is_refused(bundle_root: Path, tmp_path: Path, name: str) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    flip_byte(bundle_dir / name)
    with pytest.raises(BundleError, match=f"{name} fails its sha256 check"):
        LoadedBundle.load(bundle_dir)


def test_missing_and_extra_files_are_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    (bundle_dir / "stray.txt").write_text("x")
    with pytest.raises(BundleError, match="unexpected files"):
        LoadedBundle.load(bundle_dir)
    (bundle_dir / "stray.txt").unlink()
    (bundle_dir / "golden.json").unlink()
    with pytest.raises(BundleError, match=r"golden\.json is missing"):
        LoadedBundle.load(bundle_dir)


def test_no_bundle_at_path(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle at"):
        LoadedBundle.load(tmp_path)


def edit_manifest(bundle_dir: Path, **changes: object) -> None:
    path = bundle_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_schema_hash_mismatch_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    edit_manifest(bundle_dir, feature_schema_hash="0123456789abcdef")
    with pytest.raises(BundleError, match="feature_schema_hash"):
        LoadedBundle.load(bundle_dir)


def test_wrong_embedding_dim_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    from trainer.features import schema_hash

    bundle_dir = copy_bundle(bundle_root, tmp_path)
    genres = json.loads((bundle_dir / "manifest.json").read_text())["genres"]
    edit_manifest(bundle_dir, embedding_dim=32, feature_schema_hash=schema_hash(genres, 32))
    with pytest.raises(BundleError, match=r"user_emb.npy has shape \(300, 16\), expected \(300, 32\)"):
        LoadedBundle.load(bundle_dir)


def rewrite_array(bundle_dir: Path, name: str, array: np.ndarray) -> None:
    """Replace a bundle file and its manifest entry, so that only the content's meaning is wrong."""
    np.save(bundle_dir / name, array)
    data = (bundle_dir / name).read_bytes()
    files = json.loads((bundle_dir / "manifest.json").read_text())["files"]
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    edit_manifest(bundle_dir, files=files)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        # Its ends are right; its second entry jumps to the end, so the third goes back.
        ("user_seen_indptr.npy", lambda a: np.concatenate([a[:1], a[-1:], a[2:]]), "not a valid CSR row pointer"),
        ("user_seen_items.npy", lambda a: np.full_like(a, 2000), "user_seen_items refers to items outside"),
    ],
)
def test_inconsistent_seen_items_are_refused(
    bundle_root: Path, tmp_path: Path, name: str, edit: Callable[[np.ndarray], np.ndarray], message: str
) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    rewrite_array(bundle_dir, name, edit(np.load(bundle_dir / name)))
    with pytest.raises(BundleError, match=message):
        LoadedBundle.load(bundle_dir)


def item_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The item arrays the bundle_root fixture's writer computed: item_dense, item_emb, item_genre, item_first_ts."""
    items = bundle_items()
    return items.dense, items.emb, items.genre, items.first_ts


def test_the_mapped_item_rows_assemble_the_reference_matrix(bundle_root: Path) -> None:
    bundle = LoadedBundle.load(bundle_root)
    tables = item_tables()
    np.testing.assert_array_equal(bundle.item_emb, tables[1])  # the view of the rows is the embeddings
    rng = np.random.default_rng(4)
    candidates = rng.integers(0, bundle.n_items, 500).astype(np.uint32)
    for row in (0, 17, 299):
        dense, emb = bundle.user_dense[row], bundle.user_emb[row]
        genre = dense[-len(bundle.genres) :].copy()
        now = 1.7e9
        user: tuple[Any, ...] = (
            dense,
            emb,
            genre,
            float(bundle.user_last_ts[row]),
            now,
            np.full(6, 0.5, np.float32),
            candidates,
        )
        got = bundle.assembler.assemble(*user)
        # Bit for bit what the in-memory table (the code before the mapped rows) assembles ...
        np.testing.assert_array_equal(got, hotpath.Assembler(*tables).assemble(*user))
        # ... and the NumPy reference within float32 summation order.
        np.testing.assert_allclose(got, reference.assemble(*tables, *user), rtol=1e-5, atol=1e-5)


def rewrite_file(bundle_dir: Path, name: str, data: bytes) -> None:
    """Replace a bundle file's bytes and its manifest entry (so that it passes the checksums)."""
    (bundle_dir / name).write_bytes(data)
    files = json.loads((bundle_dir / "manifest.json").read_text())["files"]
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    edit_manifest(bundle_dir, files=files)


def test_a_truncated_item_rows_file_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    data = (bundle_dir / "item_rows.npy").read_bytes()
    rewrite_file(bundle_dir, "item_rows.npy", data[: len(data) - 384])
    with pytest.raises(BundleError) as e:
        LoadedBundle.load(bundle_dir)
    rows = 2000 * 48 * 4  # 2000 items, D = 16, G = 6, I = 11: 35 floats, padded to 48
    assert str(e.value) == (
        f"cannot map the item table: {bundle_dir / 'item_rows.npy'}: {128 + rows - 384} bytes, expected "
        f"{128 + rows} (2000 rows of 48 floats after a 128-byte header)"
    )


def test_item_rows_of_other_items_or_dimensions_are_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    dense, emb, genre, first_ts = item_tables()
    path = tmp_path / "rows.npy"
    hotpath.write_item_rows(path, dense[:1999], emb[:1999], genre[:1999], first_ts[:1999])
    rewrite_file(bundle_dir, "item_rows.npy", path.read_bytes())
    with pytest.raises(BundleError, match=r"item_rows\.npy has 1999 rows for 2000 items"):
        LoadedBundle.load(bundle_dir)
    hotpath.write_item_rows(path, dense, np.hstack([emb, emb]), genre, first_ts)
    rewrite_file(bundle_dir, "item_rows.npy", path.read_bytes())
    with pytest.raises(
        BundleError, match=r"item_rows\.npy: rows of 64 floats, expected 48 \(the bundle's dimensions\)"
    ):
        LoadedBundle.load(bundle_dir)


def as_format_2(bundle_dir: Path) -> None:
    """Rewrite a bundle as the trainer wrote it in format 2: the item arrays in files of their own beside the
    item rows, no id orders."""
    items = bundle_items()
    for name, array in (("item_emb.npy", items.emb), ("item_dense.npy", items.dense), ("item_genre.npy", items.genre)):
        rewrite_array(bundle_dir, name, array)
    files = json.loads((bundle_dir / "manifest.json").read_text())["files"]
    for name in ("item_id_order.npy", "user_id_order.npy"):
        (bundle_dir / name).unlink()
        del files[name]
    edit_manifest(bundle_dir, files=files, format=2)


def test_a_format_2_bundle_is_refused_naming_its_format(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    as_format_2(bundle_dir)
    with pytest.raises(BundleError) as e:
        LoadedBundle.load(bundle_dir)
    assert str(e.value) == (
        f"{bundle_dir}: bundle format 2, this code reads format 3 only (format 3 takes the item embeddings, "
        "dense features and genres from item_rows.npy and carries the ids' sorted order): build the bundle again"
    )
    edit_manifest(bundle_dir, format=3)  # relabelled but with format 2's files: a missing file is named
    with pytest.raises(BundleError, match=r"manifest does not list item_id_order\.npy"):
        LoadedBundle.load(bundle_dir)


def test_a_format_1_bundle_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    # A bundle as the trainer wrote it before item_rows.npy: format 1, no item rows.
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    as_format_2(bundle_dir)
    (bundle_dir / "item_rows.npy").unlink()
    files = json.loads((bundle_dir / "manifest.json").read_text())["files"]
    del files["item_rows.npy"]
    edit_manifest(bundle_dir, files=files, format=1)
    with pytest.raises(BundleError, match=r"bundle format 1, this code reads format 3 only \(format 3 takes"):
        LoadedBundle.load(bundle_dir)


def test_a_format_3_bundle_has_no_separate_item_arrays(bundle_root: Path) -> None:
    """The item embeddings, dense features and genres are views of the item rows: equal to the arrays the writer
    computed, with no file of their own."""
    bundle = LoadedBundle.load(bundle_root)
    files = set(bundle.manifest["files"])
    assert not files & {"item_emb.npy", "item_dense.npy", "item_genre.npy"}
    assert {"item_rows.npy", "item_id_order.npy", "user_id_order.npy"} <= files
    assert not {p.name for p in bundle.path.iterdir()} & {"item_emb.npy", "item_dense.npy", "item_genre.npy"}
    items = bundle_items()
    for got, want in ((bundle.item_emb, items.emb), (bundle.item_dense, items.dense), (bundle.item_genre, items.genre)):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable and not got.flags.owndata  # a view of the read-only map, not a copy
    assert bundle.item_emb.base is not None


def _twice(items: np.ndarray) -> np.ndarray:
    out = items.copy()
    out[1] = out[0]
    return out


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "ivf_codes.npy",
            lambda a: a[:, :-1].copy(),
            r"shape \[2000, 15\], expected \[2000, 16\] \(items, dimensions\)",
        ),
        ("ivf_codes.npy", lambda a: a.astype(np.int16), r"dtype is not i8: \{'descr': '<i2'"),
        ("ivf_codes.npy", np.asfortranarray, "rows are in Fortran order, expected C order"),
        ("ivf_centroids.npy", lambda a: a[:, :-1].copy(), r"shape \[\d+, 15\], expected \[nlist >= 1, 16\]"),
        ("ivf_offsets.npy", lambda a: a[:-1].copy(), r"shape \[\d+\], expected \[\d+\] \(one more than the lists\)"),
        ("ivf_items.npy", _twice, r"items\[1\] = \d+ is in the lists twice, and item \d+ in none"),
        ("ivf_items.npy", lambda a: a[:-1].copy(), r"shape \[1999\], expected \[2000\] \(every item once\)"),
        ("ivf_scale.npy", lambda a: a.astype(np.float64), "dtype is not little-endian f32"),
    ],
)
def test_ivf_files_that_do_not_fit_the_embeddings_are_refused_naming_the_file(
    bundle_root: Path, tmp_path: Path, name: str, edit: Callable[[np.ndarray], np.ndarray], message: str
) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    rewrite_array(bundle_dir, name, edit(np.load(bundle_dir / name)))
    with pytest.raises(
        BundleError, match=rf"^cannot map the IVF index: {re.escape(str(bundle_dir / name))}: {message}"
    ):
        LoadedBundle.load(bundle_dir)


def test_a_truncated_ivf_codes_file_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    data = (bundle_dir / "ivf_codes.npy").read_bytes()
    rewrite_file(bundle_dir, "ivf_codes.npy", data[:-16])
    with pytest.raises(BundleError) as e:
        LoadedBundle.load(bundle_dir)
    header = len(data) - 2000 * 16  # 2000 items, D = 16
    assert str(e.value) == (
        f"cannot map the IVF index: {bundle_dir / 'ivf_codes.npy'}: {len(data) - 16} bytes, expected {len(data)} "
        f"(2000 rows of 16 i8 values after a {header}-byte header)"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/maps and smaps are Linux's")
def test_the_ivf_files_are_mapped_not_copied_and_prefaulted_with_the_bundle(bundle_root: Path, tmp_path: Path) -> None:
    """The IVF index reads the bundle's files through one map each (the Rust core's; NumPy's are gone), which
    the load's prefault (node.prefault: every mapping of a file under the bundle directory) makes resident."""
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    bundle = LoadedBundle.load(bundle_dir, lock=True)
    mapped = [path for _, _, path in mappings(bundle_dir)]
    page = os.sysconf("SC_PAGE_SIZE")
    resident, whole = {}, {}
    for name in ivf.FILES:
        path = (bundle_dir / name).resolve()
        assert mapped.count(str(path)) == 1, (name, mapped)
        resident[name] = smaps_kib(path, "Rss")
        whole[name] = -(-path.stat().st_size // page) * page // 1024
    if resident != whole and prefault(bundle_dir) == 0:
        pytest.skip("the kernel cannot prefault (MADV_POPULATE_READ is Linux 5.14+) and the lock failed")
    assert resident == whole
    assert len(bundle.ivf) == bundle.n_items


def test_the_user_retrieval_is_the_ivf_search_and_round_trips(bundle_root: Path) -> None:
    """The loaded bundle's IVF index searches as the trainer's lists do (the NumPy reference), at the node's
    nprobe, and its hits are scored exactly against item_emb."""
    bundle = LoadedBundle.load(bundle_root, nprobe=3)
    lists = load_ivf(bundle.path)
    emb = bundle_items().emb
    tables = (lists.centroids, lists.offsets, lists.items, lists.codes, lists.scale, emb)
    for row in (0, 17, 299):
        vector = np.ascontiguousarray(bundle.user_emb[row])
        items, scores = bundle.candidates.retrieve(vector, 40)
        k = 40
        ref_items, ref_scores = reference.ivf_search(*tables, vector, k, 3, math.ceil(ivf.RESCORE * k))
        np.testing.assert_array_equal(items, ref_items)
        np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(scores, bundle.item_emb[items] @ vector, rtol=0, atol=1e-5)
    assert bundle.ivf.nlist == len(lists.centroids) and len(bundle.ivf) == bundle.n_items


def test_unknown_surface_list_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    edit_manifest(bundle_dir, surfaces={"home": "nope"})
    with pytest.raises(BundleError, match="missing popularity list 'nope'"):
        LoadedBundle.load(bundle_dir)


def test_golden_mismatch_fails_warm_up(tmp_path: Path) -> None:
    bundle_dir = make_bundle(tmp_path, n_items=300, n_users=40, seed=3, golden_offset=0.01)
    bundle = LoadedBundle.load(bundle_dir)
    with pytest.raises(BundleError, match=r"golden request 0 .* differ"):
        bundle.warm_up()


def test_node_keeps_serving_its_bundle_when_a_new_one_fails(bundle_root: Path, tmp_path: Path) -> None:
    bad = copy_bundle(bundle_root, tmp_path)
    flip_byte(bad / "user_emb.npy")
    with Node(node_settings(bundle_root)).start() as node:
        before = node.holder.snapshot()
        with pytest.raises(BundleError):
            node.load_bundle(bad)
        assert node.holder.snapshot() is before
        bad_golden = make_bundle(tmp_path / "golden", n_items=300, n_users=40, seed=4, golden_offset=0.5)
        with pytest.raises(BundleError, match="golden"):
            node.load_bundle(bad_golden)
        assert node.holder.snapshot() is before


def test_loaded_arrays_are_consistent(bundle_root: Path) -> None:
    b = LoadedBundle.load(bundle_root)
    assert b.user_seen_indptr[-1] == len(b.user_seen_items)
    assert all(v.dtype == np.uint32 for v in b.popularity.values())
    assert b.item_index["i42"] == 42 and b.user_index["u007"] == 7


def test_id_index_is_a_mapping_over_sorted_ids() -> None:
    from node.bundle import IdIndex

    ids = np.array(["b", "a10", "a9", "c", ""], dtype=str)
    index = IdIndex(ids)
    assert dict(index) == {"b": 0, "a10": 1, "a9": 2, "c": 3, "": 4} and list(index) == ["b", "a10", "a9", "c", ""]
    assert index["a9"] == 2 and index.get("c") == 3 and index.get("zz") is None and index.get("a", -1) == -1
    assert "a10" in index and "a1" not in index and 7 not in index and "a100000000000" not in index
    big = IdIndex(np.array([f"u{k}" for k in range(200_000)], dtype=str))
    t0 = time.perf_counter()
    assert all(big.get(k) is None for k in ["a-much-longer-id-than-any-in-the-array"] * 100)
    assert time.perf_counter() - t0 < 0.05  # never a cast of the whole array to the key's dtype
    assert big["u199999"] == 199_999 and big.get("u1999999") is None
    with pytest.raises(KeyError):
        index["nope"]
    assert len(IdIndex(np.array([], dtype=str))) == 0 and "x" not in IdIndex(np.array([], dtype=str))
    with pytest.raises(BundleError, match="'a' appears more than once"):
        IdIndex(np.array(["a", "b", "a"], dtype=str), "item ids")


def test_id_index_uses_a_stored_order_and_checks_it() -> None:
    from node.bundle import IdIndex

    ids = np.array(["b", "a10", "a9", "c", ""], dtype=str)
    order = np.argsort(ids, kind="stable").astype(np.int64)
    index = IdIndex(ids, "item ids", order)
    assert dict(index) == dict(IdIndex(ids)) == {"b": 0, "a10": 1, "a9": 2, "c": 3, "": 4}
    assert index["a9"] == 2 and index.get("zz") is None and "a1" not in index and index.get("") == 4
    assert index._rows is order  # used as stored (an int64 order is not even copied), not sorted again
    assert dict(IdIndex(ids, "item ids", order.astype(np.int32))) == dict(index)

    def refused(stored: list[int] | np.ndarray, message: str, of: np.ndarray = ids) -> None:
        with pytest.raises(BundleError) as e:
            IdIndex(of, "item ids", np.asarray(stored))
        assert str(e.value) == message

    refused([4, 1, 2, 3, 0], "item ids: the stored order does not sort them ('c' at row 3 before 'b' at row 0)")
    refused([4, 2, 1, 0, 3], "item ids: the stored order does not sort them ('a9' at row 2 before 'a10' at row 1)")
    refused([4, 1, 1, 0, 3], "item ids: the stored order is not a permutation (row 1 twice)")
    refused([4, 1, 2, 0, 5], "item ids: the stored order has row numbers outside [0, 5)")
    refused([-1, 1, 2, 0, 3], "item ids: the stored order has row numbers outside [0, 5)")
    refused([4, 1, 2, 0], "item ids: the stored order is int64 (4,), not 5 row numbers")
    refused(order.astype(np.float32), "item ids: the stored order is float32 (5,), not 5 row numbers")
    refused(order[[0, 1, 2, 3, 4, 0]], "item ids: the stored order is int64 (6,), not 5 row numbers")
    # Duplicate ids in a stored order that sorts them: the same refusal as without an order.
    dup = np.array(["a", "b", "a"], dtype=str)
    refused([0, 2, 1], "item ids are not unique: 'a' appears more than once", dup)


def test_the_id_order_is_checked_block_by_block_across_the_blocks_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.bundle import IdIndex

    monkeypatch.setattr(IdIndex, "CHECK_BLOCK", 4)
    ids = np.array([f"id{k:02d}" for k in range(19)], dtype=str)[::-1].copy()  # rows in descending order
    order = np.argsort(ids, kind="stable")
    assert [IdIndex(ids, "ids", order)[f"id{k:02d}"] for k in (0, 7, 18)] == [18, 11, 0]
    for i in range(18):  # every pair of neighbours, inside a block and on its edges
        swapped = order.copy()
        swapped[[i, i + 1]] = swapped[[i + 1, i]]
        with pytest.raises(BundleError, match=f"the stored order does not sort them \\('id{i + 1:02d}'"):
            IdIndex(ids, "ids", swapped)
        twice = order.copy()
        twice[i + 1] = twice[i]
        with pytest.raises(BundleError, match="not a permutation"):
            IdIndex(ids, "ids", twice)


def test_a_stored_id_order_that_does_not_sort_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = copy_bundle(bundle_root, tmp_path)
    order = np.load(bundle_dir / "user_id_order.npy")
    assert order.dtype == np.int64 and order.tolist() == list(range(300))  # u000 ... u299 are in row order
    rewrite_array(bundle_dir, "user_id_order.npy", order[[1, 0, *range(2, 300)]])
    with pytest.raises(BundleError) as e:
        LoadedBundle.load(bundle_dir)
    assert str(e.value) == "user ids: the stored order does not sort them ('u001' at row 1 before 'u000' at row 0)"
    rewrite_array(bundle_dir, "user_id_order.npy", np.arange(299))
    with pytest.raises(BundleError, match=r"user_id_order\.npy has shape \(299,\), expected \(300,\)"):
        LoadedBundle.load(bundle_dir)


def test_arrays_are_read_only_maps_and_titles_are_read_on_use(bundle_root: Path) -> None:
    b = LoadedBundle.load(bundle_root)
    assert not b.item_emb.flags.writeable and not b.user_dense.flags.writeable
    assert "titles" not in b.__dict__
    assert len(b.titles) == b.n_items and b.titles[3] == "Title 3"


@pytest.mark.skipif(sys.platform != "linux", reason="a niceness per thread is Linux's")
def test_the_loads_hot_path_steps_run_below_it_from_the_loading_thread(
    bundle_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index, the prefault and the release are called from the loading thread itself, at its own niceness,
    with the hot path's work sent LOAD_NICENESS lower (hotpath.bulk_niceness): no thread of Python runs at the
    low priority, where taking the GIL back could hold a request thread (BENCHMARKS.md, replication,
    session (17)). Afterwards, and after a failed load, the thread's bulk niceness is 0 again."""
    calls: list[tuple[str, int, int, int]] = []

    def recorded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            bulk = hotpath.bulk_niceness(0)
            hotpath.bulk_niceness(bulk)
            tid = threading.get_native_id()
            calls.append((name, tid, os.getpriority(os.PRIO_PROCESS, tid), bulk))
            return fn(*args, **kwargs)

        return call

    for name in ("view_index", "prefault", "release"):
        monkeypatch.setattr(node_bundle, name, recorded(name, getattr(node_bundle, name)))
    tid = threading.get_native_id()
    base = os.getpriority(os.PRIO_PROCESS, tid)
    bundle = LoadedBundle.load(bundle_root)
    assert hotpath.bulk_niceness(0) == 0
    bundle.release()
    assert hotpath.bulk_niceness(0) == 0
    assert calls == [(name, tid, base, node_bundle.LOAD_NICENESS) for name in ("view_index", "prefault", "release")]

    broken = copy_bundle(bundle_root, tmp_path)
    rewrite_file(broken, "ivf_codes.npy", (broken / "ivf_codes.npy").read_bytes()[:-16])
    with pytest.raises(BundleError, match="cannot map the IVF index"):
        LoadedBundle.load(broken)
    assert hotpath.bulk_niceness(0) == 0, "a failed load left its bulk niceness on the thread"
