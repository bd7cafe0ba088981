"""The replicator's verified marker: a node skips its sha256 pass only for files exactly as verified."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from node.bundle import LoadedBundle
from replicator import verified
from replicator.region_dir import RegionDir
from tests.node.synthetic_bundle import make_bundle
from trainer import bundle as bundle_format
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
