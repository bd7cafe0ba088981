"""``edgerank status``: per region, the champion, the challenger, and what each node serves.

The nodes' part comes from their reports (``node.assignment``: rewritten every ``REPORT_S`` and on every
swap, copied to the hub's nodes bucket by the region's replicator). A report older than ``STALE_S`` is
shown as ``STALE``, whatever it last said: the node, or its region's link to the hub, is gone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

import nats

from replicator import names, promotions
from replicator.cli import common

# Node report (5 s) + replicator resync (5 s) + slack: older than this, a node is not known to serve anything.
STALE_S = 30.0


def freshness(report: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """``report`` with ``age_s`` (since the node wrote it) and ``health`` ``STALE`` when it is too old to trust
    (or has no readable time); the node's own word stays in ``reported_health``."""
    try:
        written = dt.datetime.fromisoformat(str(report["ts"]))
        age = max(0.0, (now - written).total_seconds())
    except (KeyError, ValueError, TypeError):
        age = None
    stale = age is None or age > STALE_S
    return {
        **report,
        "age_s": None if age is None else round(age, 1),
        "reported_health": report.get("health"),
        "health": "STALE" if stale else report.get("health"),
    }


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="which version each region and node serves, and its health")
    common.add_flags(parser, "nats_url", "hub_domain")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


async def collect(js: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    regions = await promotions.all_regions(js)
    kv = await js.key_value(names.NODES_BUCKET)
    nodes: dict[str, list[dict[str, Any]]] = {}
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        keys = []
    for key in sorted(keys):
        entry = await kv.get(key)
        report = json.loads(entry.value or b"{}")
        nodes.setdefault(key.split(".", 1)[0], []).append(freshness(report, now))
    out = {}
    for region in sorted(set(regions) | set(nodes)):
        a = regions.get(region)
        out[region] = {
            "champion": a.champion if a else None,
            "previous": list(a.previous) if a else [],
            "challenger": a.challenger if a else None,
            "percent": a.percent if a else 0.0,
            "shadow": a.shadow if a else None,
            "generation": a.generation if a else 0,
            "nodes": nodes.get(region, []),
        }
    return out


def run(args: argparse.Namespace) -> int:
    s = common.settings(args)

    async def go() -> dict[str, Any]:
        nc, js = await common.hub(s)
        try:
            return await collect(js)
        finally:
            await nc.close()

    status = common.run(go)
    if args.json:
        common.print_json(status)
        return 0
    print(f"{'region':10} {'champion':26} {'challenger':26} {'%':>5}  {'node':24} {'serves':26} {'health':12} seen")
    for region, r in status.items():
        rows = r["nodes"] or [{}]
        for i, n in enumerate(rows):
            head = (
                f"{region:10} {r['champion'] or '-':26} {r['challenger'] or '-':26} {r['percent']:5g}"
                if i == 0
                else " " * 70
            )
            seen = "-" if n.get("age_s") is None else f"{n['age_s']:.0f} s ago"
            print(f"{head}  {n.get('node_id', '-'):24} {n.get('serving') or '-':26} {n.get('health') or '-':12} {seen}")
    return 0
