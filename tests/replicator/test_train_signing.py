"""``edgerank train`` signs the manifest when a key is configured; the bundle publishes as trained.

The training itself is replaced by a small synthetic bundle writer (real training
takes minutes on two cores; ``tests/e2e`` covers it): what is under test is the
command's signing hook and that the bundle it leaves publishes without a key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from replicator import names, signing
from replicator.nats_io import object_info
from tests.replicator.cluster import Cluster, url
from tests.replicator.harness import hub_call, release
from trainer import bundle as bundle_format
from trainer import pipeline
from trainer.synth import SynthConfig, write_synthetic


def fake_train(dataset: Any, bundle_root: Path, config: Any = None, **kw: Any) -> pipeline.Trained:
    path = release(bundle_root, "t", 7)
    return pipeline.Trained(path, bundle_format.read_manifest(path))


def test_trained_bundle_is_signed_and_publishes_without_resigning(
    cluster: Cluster,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "train", fake_train)
    interactions, items = write_synthetic(tmp_path / "data", SynthConfig(users=50, items=100))
    root = tmp_path / "bundles"
    code = main(["train", "--interactions", str(interactions), "--items", str(items), "--bundle-dir", str(root),
                 "--signing-key", str(keys[0]), "--json"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    version = json.loads(out.out)["version"]
    bundle_dir = root / version
    manifest = bundle_format.read_manifest(bundle_dir)
    signing.verify_manifest(manifest, signing.load_public(keys[1]))  # raises unless signed by this key
    bundle_format.verify_files(bundle_dir, manifest)  # signing left the files as they were

    # Published with no key: the trainer's signature is what the regions check.
    assert main(["publish", str(root), "--nats-url", url(cluster.hub), "--json"]) == 0
    published = json.loads(capsys.readouterr().out)
    assert published["version"] == version and published["key_id"] == manifest["signature"]["key_id"]
    info = hub_call(
        url(cluster.hub),
        lambda js: object_info(
            js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, names.object_name(version, "manifest.json")
        ),
    )
    assert info is not None


def test_a_bad_signing_key_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGERANK_SIGNING_KEY", str(tmp_path / "missing.key"))
    code = main(["train", "--interactions", str(tmp_path / "none.csv"), "--items", str(tmp_path / "none.csv"),
                 "--bundle-dir", str(tmp_path / "b")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "cannot read the signing key" in err, err
    assert not (tmp_path / "b").exists()
