"""The replicator's verified marker: a node skips its sha256 pass only for files exactly as verified."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import hotpath
from node.bundle import (
    CHECK_ID_ORDER,
    CHECK_ITEM_TIMES,
    CHECK_SEEN_ROWS,
    CONTENT_CHECKS,
    LoadedBundle,
    check_contents,
)
from replicator import verified
from replicator.region_dir import RegionDir
from tests.node.synthetic_bundle import make_bundle
from trainer import bundle as bundle_format
from trainer import features as feature_defs
from trainer.bundle import MANIFEST, BundleError


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("src"), n_items=300, n_users=40, seed=5)


@pytest.fixture
def region(source: Path, tmp_path: Path) -> Path:
    """A region directory holding ``source`` as the replicator installs it, with its marker."""
    bundle_dir = tmp_path / "region" / source.name
    shutil.copytree(source, bundle_dir)
    verified.write(bundle_dir)
    return bundle_dir


def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the node hashes from now on."""
    calls: list[Path] = []
    real = bundle_format.sha256_file

    def spy(path: Path, chunk: int = 1 << 20) -> str:
        calls.append(Path(path))
        return real(path, chunk)

    monkeypatch.setattr(bundle_format, "sha256_file", spy)
    return calls


def test_marker_matches_the_bundle_as_installed(region: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = bundle_format.read_manifest(region)
    assert verified.check(region, manifest) is None
    assert verified.marker_path(region) == region.parent / ".verified" / f"{region.name}.json"
    calls = hashed(monkeypatch)
    bundle = LoadedBundle.load(region)
    assert calls == [] and bundle.version == manifest["version"]
    bundle.warm_up()
    LoadedBundle.load(region, trust_marker=False)
    assert len(calls) == len(manifest["files"])


def test_no_marker_means_a_full_pass(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = hashed(monkeypatch)
    LoadedBundle.load(source)
    assert len(calls) == len(bundle_format.read_manifest(source)["files"])


def flip_in_place(path: Path) -> None:
    """Same size, same inode; only the content (and so the change time) differs."""
    with open(path, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_a_file_changed_after_verification_is_hashed_and_refused(region: Path) -> None:
    st = os.stat(region / "item_rows.npy")
    flip_in_place(region / "item_rows.npy")
    os.utime(region / "item_rows.npy", ns=(st.st_atime_ns, st.st_mtime_ns))  # hide the edit from mtime
    assert verified.check(region, bundle_format.read_manifest(region)) == "changed since verified: item_rows.npy"
    with pytest.raises(BundleError, match=r"item_rows\.npy fails its sha256 check"):
        LoadedBundle.load(region)


def test_a_replaced_file_is_hashed_and_refused(region: Path) -> None:
    data = bytearray((region / "user_emb.npy").read_bytes())
    data[-3] ^= 0xFF
    tmp = region.parent / "x.tmp"
    tmp.write_bytes(bytes(data))
    os.replace(tmp, region / "user_emb.npy")
    with pytest.raises(BundleError, match=r"user_emb\.npy fails its sha256 check"):
        LoadedBundle.load(region)


def test_an_edited_manifest_is_not_vouched_for(region: Path) -> None:
    path = region / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["surfaces"] = {"home": "trending"}
    path.write_text(json.dumps(manifest))
    assert verified.check(region, manifest) == "the manifest changed since it was verified"


def test_a_marker_for_another_version_is_ignored(region: Path, tmp_path: Path) -> None:
    other = region.parent / "other"
    shutil.copytree(region, other)
    shutil.copy(verified.marker_path(region), verified.marker_path(other))
    assert "another version" in str(verified.check(other, bundle_format.read_manifest(other)))


def test_extra_and_missing_files_are_still_refused(region: Path) -> None:
    (region / "stray.txt").write_text("x")
    with pytest.raises(BundleError, match="unexpected files"):
        LoadedBundle.load(region)
    (region / "stray.txt").unlink()
    (region / "golden.json").unlink()
    with pytest.raises(BundleError, match=r"golden\.json is missing"):
        LoadedBundle.load(region)


def test_prune_removes_markers_with_their_versions(region: Path) -> None:
    rd = RegionDir(region.parent)
    assert rd.versions() == [region.name]  # the markers' directory is not a version
    rd.prune(keep=set(), newest=0)
    assert not region.exists() and not verified.marker_path(region).exists()


def test_the_replicator_accepts_the_optional_files_and_nothing_else(source: Path, tmp_path: Path) -> None:
    from replicator import signing
    from replicator.errors import VerificationError
    from replicator.fetch import check_manifest
    from trainer.bundle import OPTIONAL_FILES

    key_path, pub_path = signing.keygen(tmp_path / "k.key")
    key, trusted = signing.load_private(key_path), signing.load_public(pub_path)
    manifest = bundle_format.read_manifest(source)
    entry = {"sha256": "0" * 64, "size": 1}

    def signed(**files: dict[str, object]) -> dict[str, object]:
        m = {**manifest, "files": {**manifest["files"], **files}}
        m.pop("signature", None)
        return signing.sign_manifest(m, key)

    files = check_manifest(signed(**dict.fromkeys(OPTIONAL_FILES, entry)), manifest["version"], trusted)
    assert set(OPTIONAL_FILES) <= set(files)
    with pytest.raises(VerificationError, match=r"unexpected file 'other\.npy'"):
        check_manifest(signed(**{"other.npy": entry}), manifest["version"], trusted)


def test_the_replicator_refuses_a_format_2_manifest(source: Path, tmp_path: Path) -> None:
    from replicator import signing
    from replicator.errors import VerificationError
    from replicator.fetch import check_manifest

    key_path, pub_path = signing.keygen(tmp_path / "k.key")
    key, trusted = signing.load_private(key_path), signing.load_public(pub_path)
    manifest = bundle_format.read_manifest(source)
    manifest.pop("signature", None)
    assert check_manifest(signing.sign_manifest(manifest, key), manifest["version"], trusted) == manifest["files"]
    old = signing.sign_manifest({**manifest, "format": 2}, key)
    with pytest.raises(VerificationError, match=r"unsupported format 2$"):
        check_manifest(old, manifest["version"], trusted)


def rewrite(bundle_dir: Path, name: str, data: bytes) -> None:
    """Replace a file's bytes and its manifest entry: intact and listed, only what it holds is wrong."""
    (bundle_dir / name).write_bytes(data)
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def break_id_order(bundle_dir: Path) -> None:
    order = np.load(bundle_dir / "item_id_order.npy")
    rewrite(bundle_dir, "item_id_order.npy", npy_bytes(order[::-1].copy()))


def break_seen_rows(bundle_dir: Path) -> None:
    indptr = np.load(bundle_dir / "user_seen_indptr.npy")
    # Its ends are right; its second entry jumps to the end, so the third goes back.
    rewrite(bundle_dir, "user_seen_indptr.npy", npy_bytes(np.concatenate([indptr[:1], indptr[-1:], indptr[2:]])))


def break_item_times(bundle_dir: Path) -> None:
    """Item 7's first_ts NaN, written into the packed row (the writer refuses NaN, so by hand)."""
    manifest = bundle_format.read_manifest(bundle_dir)
    g = len(manifest["genres"])
    stride, columns = hotpath.item_row_layout(int(manifest["embedding_dim"]), g, feature_defs.item_dim(g))
    start = dict((name, lo) for name, lo, _ in columns)["first_ts"]
    data = bytearray((bundle_dir / "item_rows.npy").read_bytes())
    header = len(data) - 4 * stride * int(manifest["counts"]["items"])
    at = header + 4 * (7 * stride + start)
    data[at : at + 8] = struct.pack("<d", math.nan)  # the low then the high half of the f64 bits
    rewrite(bundle_dir, "item_rows.npy", bytes(data))


BREAKS: dict[str, tuple[Callable[[Path], None], str]] = {
    CHECK_ID_ORDER: (break_id_order, "item ids: the stored order does not sort them"),
    CHECK_SEEN_ROWS: (break_seen_rows, "user_seen_indptr is not a valid CSR row pointer"),
    CHECK_ITEM_TIMES: (break_item_times, "first_ts of row 7 is NaN"),
}


def test_check_contents_runs_every_check_on_a_good_bundle(source: Path) -> None:
    assert check_contents(source, bundle_format.read_manifest(source)) == CONTENT_CHECKS
    assert set(BREAKS) == set(CONTENT_CHECKS)


@pytest.mark.parametrize("check", CONTENT_CHECKS)
def test_each_content_check_refuses_its_fault_and_a_marker_naming_it_spares_the_node(
    check: str, source: Path, tmp_path: Path
) -> None:
    """What the replicator checked (its marker names the check) the node does not check again; without the
    name in the marker, or without the marker, the node runs the check and refuses the bundle."""
    bundle_dir = tmp_path / "region" / source.name
    shutil.copytree(source, bundle_dir)
    breaks, message = BREAKS[check]
    breaks(bundle_dir)
    manifest = bundle_format.read_manifest(bundle_dir)
    with pytest.raises(BundleError, match=re.escape(message)):
        check_contents(bundle_dir, manifest)  # what the replicator runs before it installs a version
    with pytest.raises(BundleError, match=re.escape(message)):
        LoadedBundle.load(bundle_dir)  # no marker
    verified.write(bundle_dir, checked=[c for c in CONTENT_CHECKS if c != check])
    assert verified.checked(bundle_dir) == frozenset(CONTENT_CHECKS) - {check}
    with pytest.raises(BundleError, match=re.escape(message)):
        LoadedBundle.load(bundle_dir)
    # A marker naming the check vouches for it as it vouches for the hashes: this bundle only ever gets one
    # from a replicator whose check_contents passed.
    verified.write(bundle_dir, checked=CONTENT_CHECKS)
    assert LoadedBundle.load(bundle_dir).version == manifest["version"]
    with pytest.raises(BundleError, match=re.escape(message)):
        LoadedBundle.load(bundle_dir, trust_marker=False)


def test_a_marker_without_checks_or_with_unknown_ones_vouches_for_the_bytes_only(region: Path) -> None:
    assert verified.checked(region) == frozenset()  # the fixture's marker, as an older replicator wrote it
    marker = json.loads(verified.marker_path(region).read_text())
    marker["checked"] = ["something-else", 3]
    verified.marker_path(region).write_text(json.dumps(marker))
    assert verified.checked(region) == frozenset({"something-else"})
    assert verified.check(region, bundle_format.read_manifest(region)) is None
    break_id_order(region)  # also changes the manifest: the marker no longer vouches at all
    assert verified.check(region, bundle_format.read_manifest(region)) == "the manifest changed since it was verified"
    with pytest.raises(BundleError, match="stored order does not sort"):
        LoadedBundle.load(region)
