"""Writing and verifying bundles (trainer.bundle), with dummy files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer import bundle as B
from trainer.bundle import BundleError


def fill(st: B.Staging, skip: tuple[str, ...] = ()) -> None:
    """Every required file, with small distinct contents."""
    for name in B.REQUIRED_FILES:
        if name in skip:
            continue
        if name.endswith(".npy"):
            st.save_npy(name, np.arange(len(name), dtype=np.float32))
        elif name.endswith(".json"):
            st.save_json(name, {"name": name})
        else:
            st.file(name).write_bytes(name.encode() * 10)


def write_bundle(root: Path, version: str, **extra: object) -> Path:
    with B.stage_bundle(root, {"version": version, **extra}) as st:
        fill(st)
    return root / version


def listing(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_stage_bundle_writes_the_directory_and_latest(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    path = write_bundle(root, "v1", metrics={"x": 1})
    assert path == root / "v1" and path.is_dir()
    assert listing(root) == ["LATEST", "v1"]  # no staging dir, no temporary file
    assert (root / "LATEST").read_text() == "v1\n"
    assert B.latest_version(root) == "v1"
    manifest = B.read_manifest(path)
    assert manifest["version"] == "v1" and manifest["metrics"] == {"x": 1}
    assert manifest["format"] == B.FORMAT and manifest["created_at"]
    assert sorted(manifest["files"]) == sorted(B.REQUIRED_FILES)
    for name, meta in manifest["files"].items():
        assert meta == {"sha256": B.sha256_file(path / name), "size": (path / name).stat().st_size}
    assert listing(path) == sorted([*B.REQUIRED_FILES, B.MANIFEST])
    B.verify_files(path, manifest)

    write_bundle(root, "v2")
    assert listing(root) == ["LATEST", "v1", "v2"]
    assert B.latest_version(root) == "v2"
    B.verify_files(root / "v1", B.read_manifest(root / "v1"))  # the old one stays


def test_an_existing_version_is_refused(tmp_path: Path) -> None:
    write_bundle(tmp_path, "v1")
    with pytest.raises(BundleError, match="already exists"), B.stage_bundle(tmp_path, {"version": "v1"}) as st:
        fill(st)
    assert listing(tmp_path) == ["LATEST", "v1"]


def test_an_exception_in_the_body_leaves_nothing(tmp_path: Path) -> None:
    write_bundle(tmp_path, "v1")
    with pytest.raises(RuntimeError, match="boom"), B.stage_bundle(tmp_path, {"version": "v2"}) as st:
        fill(st)
        assert st.path.is_dir() and st.path.name.startswith(".staging-v2-")
        raise RuntimeError("boom")
    assert listing(tmp_path) == ["LATEST", "v1"]
    assert (tmp_path / "LATEST").read_text() == "v1\n"


def test_an_exception_before_any_bundle_leaves_no_latest(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), B.stage_bundle(tmp_path, {"version": "v1"}):
        raise KeyboardInterrupt
    assert listing(tmp_path) == []
    assert B.latest_version(tmp_path) is None


def test_missing_required_files_write_nothing(tmp_path: Path) -> None:
    write_bundle(tmp_path, "v1")
    with (
        pytest.raises(BundleError, match=r"bundle v2 is missing ranker\.onnx, golden\.json"),
        B.stage_bundle(tmp_path, {"version": "v2"}) as st,
    ):
        fill(st, skip=("ranker.onnx", "golden.json"))
    assert listing(tmp_path) == ["LATEST", "v1"]
    assert (tmp_path / "LATEST").read_text() == "v1\n"


@pytest.mark.parametrize("name", ["manifest.json", "../x", "a/b", ".hidden"])
def test_staging_refuses_bad_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(BundleError, match="bad bundle file name"), B.stage_bundle(tmp_path, {"version": "v1"}) as st:
        st.file(name)
    assert listing(tmp_path) == []


def test_new_version_sorts_by_time() -> None:
    import datetime as dt

    a = B.new_version(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    b = B.new_version(dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC))
    assert a.startswith("20260102T030405Z-") and a < b
    assert B.new_version() != B.new_version()


# -- verification ----------------------------------------------------------------


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, dict]:
    path = write_bundle(tmp_path / "root", "v1")
    return path, B.read_manifest(path)


def test_verify_detects_a_flipped_byte(bundle: tuple[Path, dict]) -> None:
    path, manifest = bundle
    target = path / "item_rows.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"item_rows\.npy fails its sha256 check"):
        B.verify_files(path, manifest)


def test_verify_detects_a_truncated_file(bundle: tuple[Path, dict]) -> None:
    path, manifest = bundle
    target = path / "ranker.onnx"
    target.write_bytes(target.read_bytes()[:-3])
    with pytest.raises(BundleError, match=r"ranker\.onnx has size \d+, expected \d+"):
        B.verify_files(path, manifest)


def test_verify_detects_an_extra_file(bundle: tuple[Path, dict]) -> None:
    path, manifest = bundle
    (path / "surprise.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"unexpected files \['surprise\.bin'\]"):
        B.verify_files(path, manifest)


def test_verify_detects_a_missing_file(bundle: tuple[Path, dict]) -> None:
    path, manifest = bundle
    (path / "golden.json").unlink()
    with pytest.raises(BundleError, match=r"golden\.json is missing"):
        B.verify_files(path, manifest)
    del manifest["files"]["golden.json"]
    with pytest.raises(BundleError, match=r"manifest does not list golden\.json"):
        B.verify_files(path, manifest)


@pytest.mark.parametrize("name", ["../x", "sub/x", ".x"])
def test_verify_refuses_a_name_outside_the_bundle(bundle: tuple[Path, dict], name: str) -> None:
    path, manifest = bundle
    outside = path.parent / "x"
    outside.write_bytes(b"x")
    manifest["files"][name] = {"sha256": B.sha256_file(outside), "size": 1}
    with pytest.raises(BundleError, match="outside the bundle"):
        B.verify_files(path, manifest)


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"has no manifest\.json"):
        B.read_manifest(tmp_path)
    (tmp_path / B.MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        B.read_manifest(tmp_path)
    (tmp_path / B.MANIFEST).write_text(json.dumps({"format": 99}))
    with pytest.raises(BundleError, match="bundle format 99, this code reads format 3 only"):
        B.read_manifest(tmp_path)


@pytest.mark.parametrize("old", [1, 2])
def test_an_older_format_is_refused_naming_it(tmp_path: Path, old: int) -> None:
    # Format 1 had no item_rows.npy, format 2 the item arrays twice and no id orders: the refusal says which
    # format the bundle has, which one is read and what it needs.
    (tmp_path / B.MANIFEST).write_text(json.dumps({"format": old, "files": {}}))
    with pytest.raises(BundleError) as e:
        B.read_manifest(tmp_path)
    assert str(e.value) == (
        f"{tmp_path}: bundle format {old}, this code reads format 3 only (format 3 takes the item embeddings, "
        "dense features and genres from item_rows.npy and carries the ids' sorted order): build the bundle again"
    )


def test_format_3_lists_the_id_orders_and_not_the_separate_item_arrays() -> None:
    assert B.FORMAT == 3
    assert {"item_rows.npy", "item_id_order.npy", "user_id_order.npy"} <= set(B.REQUIRED_FILES)
    assert not {"item_emb.npy", "item_dense.npy", "item_genre.npy"} & set(B.REQUIRED_FILES + B.OPTIONAL_FILES)


def test_save_ids_writes_the_ids_and_their_stable_order(tmp_path: Path) -> None:
    ids = np.array(["b", "a10", "a9", "", "c", "a"], dtype=str)
    with B.stage_bundle(tmp_path, {"version": "v1"}) as st:
        fill(st, skip=("item_ids.npy", "item_id_order.npy"))
        st.save_ids("item", ids)
    np.testing.assert_array_equal(np.load(tmp_path / "v1" / "item_ids.npy"), ids)
    order = np.load(tmp_path / "v1" / "item_id_order.npy")
    assert order.dtype == np.int64 and order.tolist() == [3, 5, 1, 2, 0, 4]
    assert B.id_order(np.array([], dtype=str)).dtype == np.int64


def test_resolve_root_and_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    v1 = write_bundle(root, "v1")
    v2 = write_bundle(root, "v2")
    assert B.resolve(root) == v2  # a root resolves through LATEST
    assert B.resolve(v1) == v1  # a bundle directory is itself
    assert B.resolve(v2) == v2
    (root / "LATEST").write_text("v1\n")
    assert B.resolve(root) == v1
    (root / "LATEST").write_text("v9\n")  # names a version that is not there
    assert B.latest_version(root) is None
    with pytest.raises(BundleError, match="no bundle at"):
        B.resolve(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match="no bundle at"):
        B.resolve(empty)


def test_write_atomic_replaces(tmp_path: Path) -> None:
    target = tmp_path / "f"
    B.write_atomic(target, b"one")
    B.write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert listing(tmp_path) == ["f"]
