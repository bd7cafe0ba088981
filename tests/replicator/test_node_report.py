"""What a node reports for `edgerank status`: rewritten while it lives, STOPPED when it stops, STALE when old."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from node.assignment import AssignmentWatcher
from node.server import Node
from node.settings import Settings
from replicator import metrics, names
from replicator.cli.status import STALE_S, freshness
from tests.replicator.harness import wait_for


def test_report_is_rewritten_while_the_node_lives_and_says_stopped_at_the_end(tmp_path: Path) -> None:
    node = Node(Settings.load({"bundle_dir": tmp_path, "port": 0, "region": "eu-west"}, env={})).start(load=False)
    watcher = AssignmentWatcher(node, tmp_path, node_id="n1", report_s=0.05).start()
    report = tmp_path / names.NODES_DIR / "n1.json"
    try:
        wait_for(report.is_file, timeout=10, what="the first report")
        first = json.loads(report.read_text())
        assert (first["node_id"], first["region"], first["serving"], first["health"]) == (
            "n1", "eu-west", None, "NOT_SERVING"
        )  # fmt: skip
        report.unlink()
        wait_for(report.is_file, timeout=10, what="the report rewritten with nothing changed")
    finally:
        watcher.stop()
        node.stop(grace=0)
    assert json.loads(report.read_text())["health"] == "STOPPED"


def test_no_report_until_the_region_directory_exists(tmp_path: Path) -> None:
    region = tmp_path / "eu-west"  # the replicator makes it; the node may start first
    node = Node(Settings.load({"bundle_dir": region, "port": 0, "region": "eu-west"}, env={})).start(load=False)
    failures = metrics.SWAP_FAILURES._value.get()
    watcher = AssignmentWatcher(node, region, node_id="n1", report_s=0.02).start()
    try:
        time.sleep(0.3)
        assert not region.exists() and metrics.SWAP_FAILURES._value.get() == failures
        region.mkdir()
        wait_for((region / names.NODES_DIR / "n1.json").is_file, timeout=10, what="a report once the directory is")
    finally:
        watcher.stop()
        node.stop(grace=0)
    assert metrics.SWAP_FAILURES._value.get() == failures


def test_status_marks_old_or_timeless_reports_stale() -> None:
    now = dt.datetime(2026, 12, 2, 12, 0, 0, tzinfo=dt.UTC)
    fresh = {"node_id": "n1", "serving": "v2", "health": "SERVING", "ts": (now - dt.timedelta(seconds=4)).isoformat()}
    assert freshness(fresh, now) == {**fresh, "age_s": 4.0, "reported_health": "SERVING", "health": "SERVING"}
    old = {**fresh, "ts": (now - dt.timedelta(seconds=STALE_S + 1)).isoformat()}
    view = freshness(old, now)
    assert (view["health"], view["reported_health"], view["age_s"], view["serving"]) == (
        "STALE", "SERVING", STALE_S + 1, "v2"
    )  # fmt: skip
    for broken in ({"health": "SERVING"}, {"health": "SERVING", "ts": "yesterday"}, {"ts": "2026-12-02T11:59:58"}):
        assert freshness(broken, now)["health"] == "STALE", broken  # missing, unreadable, or without a zone
