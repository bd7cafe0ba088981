"""``edgerank demo`` on an existing MovieLens bundle: no retraining, three users."""

from __future__ import annotations

import json
import re

import numpy as np

from tests.e2e.conftest import TrainedBundle, run_cli
from trainer import bundle as bundle_format

SECTIONS = ("# warm user", "# cold user (held out of training)", "# unknown user")
HEADER = re.compile(r"^user (\S+)  served_by (\S+)  bundle (\S+)  model (\S+)  arm (\S+)  ")
ROW = re.compile(r"^\s*(\d+)  (\S+)\s+(.*?)\s+(-?\d+\.\d{4})  ([A-Z]+)$")


def test_demo_serves_three_users(movielens_bundle: TrainedBundle) -> None:
    root = movielens_bundle.root
    before = sorted(p.name for p in root.iterdir())
    result = run_cli(["demo", "--bundle-dir", root], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training one" not in result.stderr
    assert sorted(p.name for p in root.iterdir()) == before  # it did not train another bundle
    out = result.stdout
    version = movielens_bundle.manifest["version"]
    assert out.startswith(f"edgerank demo: bundle {version} on 127.0.0.1:")

    starts = [out.index(s) for s in SECTIONS]
    assert starts == sorted(starts)
    bodies = [out[a:b] for a, b in zip(starts, [*starts[1:], len(out)], strict=True)]

    ids = np.load(movielens_bundle.bundle_dir / "item_ids.npy").tolist()
    titles = dict(zip(ids, json.loads((movielens_bundle.bundle_dir / "item_titles.json").read_text()), strict=True))
    user_ids = set(np.load(movielens_bundle.bundle_dir / "user_ids.npy").tolist())
    cold_users = set(movielens_bundle.manifest["cold_users"])
    served = []
    for section, body in zip(SECTIONS, bodies, strict=True):
        lines = body.strip().splitlines()
        assert lines[0] == section
        header = HEADER.match(lines[1])
        assert header, lines[1]
        user, served_by, bundle_version, model, arm = header.groups()
        assert bundle_version == version
        assert model == movielens_bundle.manifest["model_version"]
        assert arm == "champion"
        assert lines[2].split() == ["rank", "item_id", "title", "score", "source"]
        rows = [ROW.match(line) for line in lines[3:]]
        assert len(rows) == 10 and all(rows), lines[3:]
        for k, row in enumerate(rows, start=1):
            assert row is not None
            rank, item, title, _, _ = row.groups()
            assert int(rank) == k
            full = titles[item]
            assert title == full or (title.endswith("…") and full.startswith(title[:-1])), (item, title)
        assert any(re.search(r"\(\d{4}\)", row.group(3)) for row in rows if row)  # real movie titles
        served.append((user, served_by))

    (warm, warm_by), (cold, cold_by), (unknown, unknown_by) = served
    assert warm in user_ids and warm_by == "FULL"
    assert cold in cold_users and cold not in user_ids and cold_by == "POPULARITY"
    assert unknown not in user_ids and unknown_by == "POPULARITY"
    assert bundle_format.latest_version(root) == version
