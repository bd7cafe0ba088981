"""``edgerank bench replication`` for real on a small bundle: several swaps pooled, answers only from its versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from replicator.bench import ReplicationBench, _last_problem, run
from replicator.errors import ReplicatorError
from tests.replicator.harness import release


def test_swaps_are_pooled_and_every_answer_comes_from_a_bench_version(tmp_path: Path) -> None:
    bundle = release(tmp_path / "src", "bench", seed=11)
    out = run(ReplicationBench(bundle, "small", rate=40.0, steady_s=1.0, min_swap_window_s=1.0, swaps=2))

    assert out["swaps"] == 2
    swaps = out["per_swap"]
    assert len(swaps) == 2
    assert len({s["version"] for s in swaps}) == 2
    # The pooled windows are the swaps' windows together: nothing dropped, nothing counted twice.
    for window in ("steady", "swap"):
        assert out[window]["requests"] == sum(s[window]["requests"] for s in swaps)
        assert out[window]["requests"] > 0
        assert out[window]["errors"] == 0
        assert out[window]["max_ms"] == max(s[window]["max_ms"] for s in swaps)
    assert out["live_in_all_regions_s"] == max(s["live_in_all_regions_s"] for s in swaps)
    assert out["swap_p999_ratio"] == pytest.approx(out["swap"]["p999_ms"] / out["steady"]["p999_ms"], abs=0.006)
    assert out["answers_from_other_versions"] == 0
    # Rolled back from the last swap's version to the one before it, in both regions.
    assert out["rollback_window"]["errors"] == 0
    assert np.isfinite(out["rollback_s"])
    for s in swaps:
        for region in s["breakdown_s"].values():
            assert region["serving"] is not None, region


def test_zero_swaps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplicatorError, match="swaps must be at least 1, got 0"):
        run(ReplicationBench(tmp_path, "none", swaps=0))


def test_a_prefetch_timeout_names_the_replicators_last_problem() -> None:
    ts = "2026-12-02T05:19:10.399Z"
    lines = [
        {"ts": ts, "level": "info", "msg": "region eu-west: prefetching v3"},
        {
            "ts": ts,
            "level": "warning",
            "msg": "region eu-west: prefetch failed: TransferError: no space left on device",
        },
        {"ts": ts, "level": "info", "msg": "region eu-west: assigned champion v2"},
    ]
    text = "\n".join([*(json.dumps(x) for x in lines), "a progress bar, not JSON", "[1, 2]"])
    assert _last_problem(text) == "region eu-west: prefetch failed: TransferError: no space left on device"
    assert _last_problem(json.dumps(lines[0])) == "no warning or error logged"
