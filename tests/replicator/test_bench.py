"""``edgerank bench replication`` for real on a small bundle: several swaps pooled, answers only from its versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from replicator.bench import (
    NEW_VERSION_S,
    SWAPS,
    ReplicationBench,
    _first_on,
    _last_problem,
    _phases,
    _pipeline_mean,
    _send_lag_max_ms,
    _tail,
    run,
)
from replicator.bench_load import Sample
from replicator.cli.bench import table
from replicator.errors import ReplicatorError
from tests.e2e.conftest import run_cli
from tests.replicator.harness import release
from trainer.bundle import BundleError


def test_swaps_are_pooled_and_every_answer_comes_from_a_bench_version(tmp_path: Path) -> None:
    bundle = release(tmp_path / "src", "bench", seed=11)
    # The NATS servers niced, as `--nats-nice 5` starts them: they still carry every version. Two new versions
    # for three swaps: the third promotes v1 again, which neither node still has loaded.
    bench = ReplicationBench(
        bundle, "small", rate=40.0, steady_s=1.0, min_swap_window_s=1.0, swaps=3, versions=2, nats_niceness=5
    )
    out = run(bench)

    assert out["swaps"] == 3 and out["new_versions"] == 2
    assert out["nats_niceness"] == 5
    swaps = out["per_swap"]
    assert len(swaps) == 3
    v2, v3, again = (s["version"] for s in swaps)
    assert len({v2, v3, again}) == 3 and again.endswith("-bench-v1"), swaps
    assert [s["publish_s"] is None for s in swaps] == [False, False, True]  # v1 was published before the load
    assert swaps[2]["uploaded_files"] == 0 and swaps[2]["prefetched_in_all_regions_s"] is None
    assert out["publish_s"] == max(s["publish_s"] for s in swaps[:2])
    for s in swaps:  # each swap loads its version: the node logs it loading after the promotion
        assert all(region["loading"] is not None and region["loading"] >= 0 for region in s["breakdown_s"].values())
    # The pooled windows are the swaps' windows together: nothing dropped, nothing counted twice.
    for window in ("steady", "swap"):
        assert out[window]["requests"] == sum(s[window]["requests"] for s in swaps)
        assert out[window]["requests"] > 0
        assert out[window]["errors"] == 0
        assert out[window]["max_ms"] == max(s[window]["max_ms"] for s in swaps)
    assert out["live_in_all_regions_s"] == max(s["live_in_all_regions_s"] for s in swaps)
    phases = out["swap_phases"]  # the swap windows split at each node's first answer from the new version
    assert phases["until_served"]["requests"] + phases["after_served"]["requests"] == out["swap"]["requests"]
    assert phases["until_served"]["requests"] > 0 and phases["after_served"]["requests"] > 0, phases
    assert max(phases["until_served"]["max_ms"], phases["after_served"]["max_ms"]) == out["swap"]["max_ms"]
    assert out["swap_p999_ratio"] == pytest.approx(out["swap"]["p999_ms"] / out["steady"]["p999_ms"], abs=0.006)
    lo, hi = out["swap_p999_ratio_ci90"]
    assert 0 < lo <= hi
    # The human-readable report: a row per swap, the pooled row, the interval.
    report = {"machine": {"cpus": 2, "load_avg_start": [0.5]}, "command": "edgerank bench replication", "small": out}
    lines = table(report, labels=("small",))
    mb = f"{out['bundle_mb']:.1f}"
    assert [line.split()[:3] for line in lines[2:6]] == [["small", mb, str(k)] for k in (1, 2, 3, "all")]
    assert lines[4].split()[3] == "-"  # no publish for v1's second promotion
    assert lines[6] == f"  small: swap_p999_ratio {out['swap_p999_ratio']}, 90% interval {lo}-{hi} (bootstrap)"
    assert lines[7].startswith("  small: swap P99.9 until each node answered from the new version"), lines[7]
    assert lines[8].startswith("  small: requests setting each P99.9 with a machine stall in flight"), lines[8]
    for window in ("steady", "swap"):  # the requests that set each P99.9, and those with a stall of the machine
        tail = out["tail"][window]
        assert 1 <= tail["requests"] <= out[window]["requests"] and 0 <= tail["with_machine_stall"] <= tail["requests"]
        stall = out["pressure_stall_ms"][window]
        assert stall is None or min(stall.values()) >= 0, stall
    assert out["answers_from_other_versions"] == 0
    # Three versions stored, all in use (champion and previous versions): nothing pruned; each region's mirror
    # holds what the hub holds.
    assert [s["pruned"] for s in swaps] == [[], [], []]
    store = out["bundle_store_mb"]
    assert set(store) == {"hub", "eu-west", "us-east"} and store["eu-west"] == store["us-east"] == store["hub"]
    assert store["hub"] == pytest.approx(3 * out["bundle_mb"], rel=0.02)
    peaks = out["peak_rss_mb"]
    assert set(peaks) == {"nats-hub", "nats-eu-west", "nats-us-east", "replicate-eu-west", "replicate-us-east",
                          "node-eu-west", "node-us-east"}  # fmt: skip
    assert all(m is not None and m > 1.0 for m in peaks.values()), peaks
    # Rolled back from the last swap's version to the one before it, in both regions.
    assert out["rollback_window"]["errors"] == 0
    assert np.isfinite(out["rollback_s"])
    for s in swaps:
        for region in s["breakdown_s"].values():
            assert region["serving"] is not None, region
        assert all(m > 0 for m in s["pipeline_ms_mean"].values()), s["pipeline_ms_mean"]
        for window, lag in s["send_lag_max_ms"].items():
            assert 0 <= lag <= out["send_lag_max_ms"][window]
        for stall in s["pressure_stall_ms"].values():
            kinds = {"memory", "cpu"} <= set(stall or {}) <= {"memory", "cpu", "steal"}
            assert stall is None or (kinds and min(stall.values()) >= 0), stall
        assert all(x["send_lag_ms"] >= 0 for x in s["swap_slowest"])
    assert out["pipeline_ms_mean"]["steady"] > 0 and out["pipeline_ms_mean"]["first_on_new"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nats-nice", "20"], "--nats-nice must be in [0, 19], got 20"),
        (["--swaps", "0"], "--rate must be positive, --steady-s at least 1 and --swaps at least 1"),
        (
            ["--versions", "1"],
            "--versions must be at least 1, and at least 2 when below --swaps (a node keeps its "
            "previous version loaded: promoting it again would be no load), got 1",
        ),
        (
            ["--versions", "0", "--swaps", "1"],
            "--versions must be at least 1, and at least 2 when below --swaps (a "
            "node keeps its previous version loaded: promoting it again would be no load), got 0",
        ),
    ],
)
def test_bad_cli_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(["bench", "replication", "--synthetic-dir", tmp_path, "--only", "synthetic", *args], timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"edgerank: error: {message}"]


def test_zero_swaps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplicatorError, match="swaps must be at least 1, got 0"):
        run(ReplicationBench(tmp_path, "none", swaps=0))


@pytest.mark.parametrize("swaps", [1, 2, SWAPS])
def test_the_default_versions_fit_any_number_of_swaps(tmp_path: Path, swaps: int) -> None:
    # VERSIONS new versions, at most one per swap: past the counts' check, to the missing bundle.
    assert ReplicationBench(tmp_path, "none").swaps == SWAPS
    with pytest.raises(BundleError, match="no bundle at"):
        run(ReplicationBench(tmp_path, "none", swaps=swaps))


@pytest.mark.parametrize("versions", [0, 1, 5])
def test_versions_the_swaps_cannot_cycle_through_are_refused(tmp_path: Path, versions: int) -> None:
    # One new version and v1 only: the third swap would promote the node's previous version, still loaded.
    with pytest.raises(ReplicatorError, match=f"versions: from 1 to swaps \\(4\\).*got {versions}"):
        run(ReplicationBench(tmp_path, "none", swaps=4, versions=versions))


def test_the_tail_counts_the_requests_with_a_machine_stall_in_flight() -> None:
    class _Pressure:  # stolen CPU between 10.0 and 10.2 s, memory pressure between 20.0 and 20.1 s
        def stall_ms(self, t0: float, t1: float) -> dict[str, float]:
            steal = 30.0 if t0 < 10.2 and t1 > 10.0 else 1.0
            return {"memory": 50.0 if t0 < 20.1 and t1 > 20.0 else 0.0, "cpu": 500.0, "steal": steal}

    fast = [Sample(float(t), 2.0, True, "v1", 1.0, "a") for t in range(3000)]
    slow = [
        Sample(10.05, 80.0, True, "v1", 1.0, "a"),  # in flight during the steal
        Sample(19.95, 90.0, True, "v1", 1.0, "b"),  # sent before the memory stall, answered after it began
        Sample(30.0, 85.0, True, "v1", 1.0, "a", lag_ms=12.0),  # sent late: the generator itself was held up
        Sample(40.0, 95.0, True, "v1", 60.0, "b"),  # slow in the node, the machine quiet (CPU pressure is no stall)
    ]
    assert _tail(fast + slow, _Pressure()) == {"requests": 4, "with_machine_stall": 3}  # type: ignore[arg-type]
    assert _tail([], _Pressure()) == {"requests": 0, "with_machine_stall": 0}  # type: ignore[arg-type]


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


class _Load:
    def __init__(self, samples: list[Sample]):
        self.samples, self.targets = samples, sorted({x.target for x in samples})

    def window(self, t0: float, t1: float) -> list[Sample]:
        return [x for x in self.samples if t0 <= x.intended < t1]


def test_a_new_versions_first_seconds_are_counted_from_each_nodes_first_answer() -> None:
    def at(t: float, version: str, ms: float, target: str, ok: bool = True) -> Sample:
        return Sample(t, ms + 1.0, ok, version if ok else "", ms if ok else float("nan"), target)

    samples = [
        at(0.5, "v1", 9.0, "a"),  # the old version: not counted
        at(1.0, "v2", 3.0, "a"),  # a serves v2 from 1.0
        at(1.0 + NEW_VERSION_S - 0.01, "v2", 5.0, "a"),
        at(1.0 + NEW_VERSION_S, "v2", 100.0, "a"),  # past a's first seconds
        at(2.0, "v2", 7.0, "b", ok=False),  # failed: no pipeline time
        at(3.0, "v2", 1.0, "b"),  # b serves v2 from 3.0
        at(3.0 + NEW_VERSION_S + 0.5, "v2", 100.0, "b"),
    ]
    first = _first_on(_Load(samples), "v2", 0.0, 100.0)  # type: ignore[arg-type]
    assert sorted(x.pipeline_ms for x in first) == [1.0, 3.0, 5.0]
    assert _pipeline_mean(first) == 3.0
    assert _pipeline_mean([samples[4]]) is None


def test_a_swap_window_splits_at_each_nodes_first_answer_from_the_new_version() -> None:
    samples = [Sample(t / 10, 1.0, True, "v1" if t < 5 else "v2", 1.0, target) for t in range(10) for target in "ab"]
    before, after = _phases(samples, {"a": 0.5, "b": 0.3})
    assert sorted((x.target, x.intended) for x in before) == [("a", k / 10) for k in range(5)] + [
        ("b", k / 10) for k in range(3)
    ]
    assert len(after) == len(samples) - len(before) and all(x.intended >= 0.3 for x in after)


def test_a_windows_send_lag_is_its_generators_worst() -> None:
    samples = [Sample(float(t), 2.0, True, "v1", 1.0, "a", lag) for t, lag in enumerate([0.01, 41.26, 0.2])]
    assert _send_lag_max_ms(samples) == 41.3
    assert _send_lag_max_ms([]) == 0.0
