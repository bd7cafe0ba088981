"""A bundle trained from the generic CSV format: written, verified, served over gRPC; the train CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from node.bundle import LoadedBundle
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.server import Node
from node.settings import Settings
from tests.e2e.conftest import SyntheticBundle, run_cli
from trainer import bundle as bundle_format
from trainer.features import feature_names, schema_hash

N = 10


def test_the_generic_bundle_is_written(synthetic_bundle: SyntheticBundle) -> None:
    b = synthetic_bundle
    assert bundle_format.resolve(b.root) == b.bundle_dir
    assert bundle_format.latest_version(b.root) == b.manifest["version"] == b.bundle_dir.name
    assert {p.name for p in b.root.iterdir()} == {"LATEST", b.bundle_dir.name}  # no staging left
    m = b.manifest
    bundle_format.verify_files(b.bundle_dir, m)
    # it is the generic dataset, not MovieLens
    assert m["source"] == {"dataset": "interactions"}
    catalog = b.dataset.catalog
    assert m["counts"]["items"] == len(catalog) == 500
    item_ids = np.load(b.bundle_dir / "item_ids.npy").tolist()
    assert item_ids == catalog.item_ids and item_ids[0] == "item-0"
    assert json.loads((b.bundle_dir / "item_titles.json").read_text()) == catalog.titles
    assert all(u.startswith("user-") for u in np.load(b.bundle_dir / "user_ids.npy").tolist())
    assert m["feature_names"] == feature_names(m["genres"])
    assert m["feature_schema_hash"] == schema_hash(m["genres"], m["embedding_dim"])
    assert m["gates"]["student"]["passed"] is True
    assert m["metrics"]["warm"]["users"] > 0 and m["metrics"]["cold"]["users"] > 0
    assert m["metrics"]["warm"]["student"]["ndcg@10"] > m["metrics"]["warm"]["popularity"]["ndcg@10"]


def test_the_generic_bundle_loads_and_passes_its_golden_check(synthetic_bundle: SyntheticBundle) -> None:
    bundle = LoadedBundle.load(synthetic_bundle.root)
    assert bundle.path == synthetic_bundle.bundle_dir
    assert bundle.version == synthetic_bundle.manifest["version"]
    assert len(bundle.golden) > 0 and all(len(case["items"]) > 0 for case in bundle.golden)
    bundle.warm_up()  # raises BundleError when the node cannot reproduce the trainer's scores


@pytest.fixture(scope="module")
def node(synthetic_bundle: SyntheticBundle) -> Iterator[Node]:
    settings = Settings.load(
        {"bundle_dir": synthetic_bundle.root, "port": 0, "host": "127.0.0.1", "workers": 4}, env={}
    )
    with Node(settings).start() as n:
        yield n


@pytest.fixture(scope="module")
def stub(node: Node) -> Iterator[ranker_pb2_grpc.RankerStub]:
    with grpc.insecure_channel(node.target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield ranker_pb2_grpc.RankerStub(channel)


def seen_item_ids(bundle: LoadedBundle, user_id: str) -> set[str]:
    row = bundle.user_index[user_id]
    seen = bundle.user_seen_items[bundle.user_seen_indptr[row] : bundle.user_seen_indptr[row + 1]]
    return {str(bundle.item_ids[i]) for i in seen}


def test_a_warm_user_is_served_by_the_full_pipeline(node: Node, stub: ranker_pb2_grpc.RankerStub) -> None:
    bundle = node.holder.snapshot()
    assert bundle.path.parent == node.settings.bundle_dir
    users = [str(u) for u in bundle.user_ids[:: max(1, len(bundle.user_ids) // 5)].tolist()]
    for user in users:
        response = stub.Rank(ranker_pb2.RankRequest(user_id=user, surface="home", num_results=N), timeout=10)
        assert response.served_by == ranker_pb2.SERVED_BY_FULL, user
        assert response.bundle_version == bundle.version
        assert response.model_version == bundle.model_version and response.model_version.startswith("student-")
        ids = [i.item_id for i in response.items]
        assert len(ids) == N and len(set(ids)) == N
        assert all(i in bundle.item_index for i in ids)
        seen = seen_item_ids(bundle, user)
        assert seen and not set(ids) & seen, f"user {user} got items they already saw"
        assert [i.rank for i in response.items] == list(range(1, N + 1))


def test_an_unknown_user_gets_popularity(node: Node, stub: ranker_pb2_grpc.RankerStub) -> None:
    bundle = node.holder.snapshot()
    response = stub.Rank(ranker_pb2.RankRequest(user_id="nobody-knows-me", num_results=N), timeout=10)
    assert response.served_by == ranker_pb2.SERVED_BY_POPULARITY
    ids = [i.item_id for i in response.items]
    assert ids == [str(x) for x in bundle.item_ids[bundle.popularity["global"][:N]].tolist()]
    assert all(i.source == ranker_pb2.SOURCE_POPULAR for i in response.items)


def test_a_cold_user_of_the_data_is_unknown_to_the_node(
    synthetic_bundle: SyntheticBundle, node: Node, stub: ranker_pb2_grpc.RankerStub
) -> None:
    cold = synthetic_bundle.manifest["cold_users"]
    assert cold and not set(cold) & set(node.holder.snapshot().user_index)
    response = stub.Rank(ranker_pb2.RankRequest(user_id=cold[0], num_results=N), timeout=10)
    assert response.served_by == ranker_pb2.SERVED_BY_POPULARITY


# -- the command line ------------------------------------------------------------


def test_cli_train_on_the_generic_format(synthetic_bundle: SyntheticBundle, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    result = run_cli(
        [
            "train",
            "--interactions",
            synthetic_bundle.interactions,
            "--items",
            synthetic_bundle.items,
            "--bundle-dir",
            root,
            "--json",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert {"version", "path", "gates", "metrics"} <= set(doc)
    assert Path(doc["path"]) == root / doc["version"]
    assert bundle_format.latest_version(root) == doc["version"]
    assert doc["gates"]["student"]["passed"] is True
    manifest = bundle_format.read_manifest(Path(doc["path"]))
    bundle_format.verify_files(Path(doc["path"]), manifest)
    assert manifest["source"]["interactions"] == str(synthetic_bundle.interactions.resolve())
    assert manifest["source"]["items"] == str(synthetic_bundle.items.resolve())
    assert manifest["parent"] is None
    # same data, same seed: the same model as the in-process training
    assert manifest["model_version"] == synthetic_bundle.manifest["model_version"]
    assert doc["metrics"]["warm"]["student"]["ndcg@10"] == pytest.approx(
        synthetic_bundle.manifest["metrics"]["warm"]["student"]["ndcg@10"], abs=1e-9
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one line on stderr starting "edgerank: error:", no traceback."""
    stderr = result.stderr
    assert result.returncode == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("edgerank: error: ")
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_train_bad_items_file(synthetic_bundle: SyntheticBundle, tmp_path: Path) -> None:
    bad_items = tmp_path / "items.csv"
    lines = synthetic_bundle.items.read_text().splitlines()
    header = lines[0].split(",")
    assert "genres" in header
    drop = header.index("genres")
    rows = [",".join(c for k, c in enumerate(line.split(",")) if k != drop) for line in lines]
    bad_items.write_text("\n".join(rows) + "\n")
    root = tmp_path / "bundles"
    result = run_cli(
        ["train", "--interactions", synthetic_bundle.interactions, "--items", bad_items, "--bundle-dir", root, "--json"]
    )
    assert_one_line_error(result, str(bad_items), "missing column 'genres'")
    assert result.stdout == ""
    assert not root.exists() or not any(root.iterdir())


def test_cli_train_unknown_item(synthetic_bundle: SyntheticBundle, tmp_path: Path) -> None:
    bad = tmp_path / "interactions.csv"
    text = synthetic_bundle.interactions.read_text().splitlines()
    text[3] = "user-0,item-99999,4,1500000000"
    bad.write_text("\n".join(text) + "\n")
    result = run_cli(
        ["train", "--interactions", bad, "--items", synthetic_bundle.items, "--bundle-dir", tmp_path / "b"]
    )
    assert_one_line_error(result, f"{bad}:4:", "'item-99999'")
