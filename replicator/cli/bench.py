"""``edgerank bench replication``: publish, promote, roll back across two local regions, timed."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from node.conditions import machine
from replicator.errors import ReplicatorError

BENCH_STUDENT_GATE = 0.5
SERVERS = "throwaway nats-server hub + 2 leaf nodes on loopback; per region a replicator and a node process"
LABELS = ("movielens", "synthetic")  # the bundles, in the order they run
TARGETS = {"live_in_all_regions_s": 10.0, "rollback_s": 1.0, "swap_p999_ratio": 1.5}


def register(which: Any) -> None:
    """Add ``replication`` to ``edgerank bench``'s subcommands."""
    from replicator.bench import SWAPS, VERSIONS

    p = which.add_parser("replication", help="publish, promote and roll back a bundle in two local regions, timed")
    p.add_argument("--bundle-dir", type=Path, default=Path("bundles"), help="MovieLens bundle root (trained if empty)")
    p.add_argument(
        "--synthetic-dir", type=Path, default=Path("bundles-synth"),
        help="1M-item synthetic bundle root (built with edgerank synth's generator if empty)",
    )  # fmt: skip
    p.add_argument("--only", choices=("movielens", "synthetic"), default=None, help="run one bundle only")
    p.add_argument("--rate", type=float, default=100.0, help="Rank requests/s over both nodes (default 100)")
    p.add_argument("--steady-s", type=float, default=10.0, help="steady-state window before each swap, s (default 10)")
    p.add_argument(
        "--swaps", type=int, default=SWAPS,
        help="promotions one after another, their windows pooled for the P99.9 ratio (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--versions", type=int, default=VERSIONS,
        help="new versions published, at most --swaps; the further swaps promote them again in turn, each one "
        "neither node still has loaded (at least 2 then; default %(default)s)",
    )  # fmt: skip
    p.add_argument("--no-prefetch", action="store_true", help="replicators fetch a version only once it is promoted")
    p.add_argument(
        "--nats-nice", type=int, default=0,
        help="CPU niceness of the NATS hub and leaves, in [0, 19] (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _movielens(root: Path) -> Path:
    from trainer import bundle as bundle_format

    if bundle_format.latest_version(root) is None:
        from trainer.pipeline import train_movielens

        print(f"edgerank: no bundle in {root}; training one from MovieLens", file=sys.stderr)
        return train_movielens(root)
    return bundle_format.resolve(root)


def _synthetic(root: Path) -> Path:
    from trainer import bundle as bundle_format

    if bundle_format.latest_version(root) is None:
        from dataclasses import replace

        from trainer.synth_bundle import SynthBundleConfig, build_synth_bundle

        print(f"edgerank: no bundle in {root}; building the 1M-item synthetic bundle (minutes)", file=sys.stderr)
        # What is measured is moving and swapping the bytes, not the ranker's quality: the student's gate
        # against its teacher is relaxed here (the manifest records it) so that a run never dies on it.
        config = replace(SynthBundleConfig(), student_gate=BENCH_STUDENT_GATE)
        return build_synth_bundle(root, config).bundle_dir
    return bundle_format.resolve(root)


def run(args: argparse.Namespace) -> int:
    from replicator.bench import ReplicationBench
    from replicator.bench import run as run_bench

    # Checked here as well as in run_bench, in the flags' words, before minutes of training or building a bundle.
    if args.rate <= 0 or args.steady_s < 1 or args.swaps < 1:
        raise ReplicatorError("--rate must be positive, --steady-s at least 1 and --swaps at least 1")
    versions = min(args.versions, args.swaps)
    if versions < 1 or (versions < args.swaps and versions < 2):
        raise ReplicatorError(
            f"--versions must be at least 1, and at least 2 when below --swaps (a node keeps its previous version "
            f"loaded: promoting it again would be no load), got {args.versions}"
        )
    if not 0 <= args.nats_nice <= 19:
        raise ReplicatorError(f"--nats-nice must be in [0, 19], got {args.nats_nice}")
    out: dict[str, Any] = {"machine": machine(servers=SERVERS), "targets": TARGETS}
    bundles = {"movielens": (_movielens, args.bundle_dir), "synthetic": (_synthetic, args.synthetic_dir)}
    for label in LABELS:
        if args.only and args.only != label:
            continue
        resolve, root = bundles[label]
        out[label] = run_bench(
            ReplicationBench(
                resolve(root),
                label,
                rate=args.rate,
                steady_s=args.steady_s,
                swaps=args.swaps,
                versions=versions,
                prefetch=not args.no_prefetch,
                nats_niceness=args.nats_nice,
            )
        )
    out["command"] = "edgerank " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("\n".join(table(out)))
    return 0


def table(out: dict[str, Any], labels: tuple[str, ...] = LABELS) -> list[str]:
    """The human-readable report: a row per swap and a pooled row per bundle, then the ratio's interval and
    how many of the requests that set each P99.9 came with a stall of the whole machine."""
    from replicator.bench import STALL_MS

    lines: list[str] = []
    c = out["machine"]
    lines.append(f"replication, {c['cpus']} cpus, load average {c['load_avg_start'][0]} at start; {out['command']}")
    row = "  {:10} {:>8} {:>5} {:>10} {:>8} {:>13} {:>11} {:>6} {:>11}"
    header = ("bundle", "MB", "swap", "publish s", "live s", "steady p99.9", "swap p99.9", "ratio", "rollback s")
    lines.append(row.format(*header))
    for label in labels:
        if label in out:
            r = out[label]
            mb = f"{r['bundle_mb']:.1f}"
            for i, s in enumerate(r["per_swap"], 1):
                lines.append(
                    row.format(
                        label, mb, i, "-" if s["publish_s"] is None else f"{s['publish_s']:.2f}",
                        f"{s['live_in_all_regions_s']:.2f}",
                        str(s["steady"]["p999_ms"]), str(s["swap"]["p999_ms"]), str(s["swap_p999_ratio"]), "",
                    )
                )  # fmt: skip
            lines.append(
                row.format(
                    label, mb, "all", f"{r['publish_s']:.2f}", f"{r['live_in_all_regions_s']:.2f}",
                    str(r["steady"]["p999_ms"]), str(r["swap"]["p999_ms"]), str(r["swap_p999_ratio"]),
                    f"{r['rollback_s']:.3f}",
                )
            )  # fmt: skip
            if r["swap_p999_ratio_ci90"]:
                lo, hi = r["swap_p999_ratio_ci90"]
                lines.append(f"  {label}: swap_p999_ratio {r['swap_p999_ratio']}, 90% interval {lo}-{hi} (bootstrap)")
            until, after = r["swap_phases"]["until_served"], r["swap_phases"]["after_served"]
            lines.append(
                f"  {label}: swap P99.9 until each node answered from the new version {until['p999_ms']} ms "
                f"({until['requests']} requests), after {after['p999_ms']} ms ({after['requests']})"
            )
            tail = r["tail"]
            lines.append(
                f"  {label}: requests setting each P99.9 with a machine stall in flight (stolen CPU, memory pressure "
                f"or send lag >= {STALL_MS:.0f} ms): steady {tail['steady']['with_machine_stall']} of "
                f"{tail['steady']['requests']}, swap {tail['swap']['with_machine_stall']} of {tail['swap']['requests']}"
            )
    lines.append(f"  targets: {TARGETS}")
    return lines
