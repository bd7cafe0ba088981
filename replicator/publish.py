"""``publish``: gate a bundle, sign it, upload its files, announce its version.

Files go to the hub's object store as ``<version>/<file>`` in 1 MiB chunks;
``manifest.json`` goes last, so a version whose manifest is in the store has
all its files there. An upload is skipped when an identical object is already
stored, and the announcement carries ``Nats-Msg-Id: <version>``, so publishing
the same bundle twice changes nothing.

Before uploading, ``publish`` makes room: with ``keep`` > 0 it deletes the
stored versions that no region's promotion state names beyond the newest
``keep`` (the one being published counts as one: :mod:`replicator.retention`).
A store still too full is a :class:`~replicator.errors.StoreFull` naming the file.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from tqdm import tqdm

from replicator import gates, names, promotions, retention, signing
from replicator.errors import ReplicatorError, StoreFull
from replicator.nats_io import ensure_hub, get_file, put_file
from trainer import bundle as bundle_format
from trainer.bundle import MANIFEST, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    version: str
    bytes: int
    uploaded_files: int
    skipped_files: int
    gates: dict[str, str]
    seconds: float
    key_id: str
    pruned: list[str]  # versions deleted from the hub to make room
    pruned_bytes: int


async def champion_manifest(js: JetStreamContext) -> dict[str, Any] | None:
    """The best of the regions' champion manifests (by warm ndcg@10), if any region has one."""
    best: dict[str, Any] | None = None
    champions = {a.champion for a in (await promotions.all_regions(js)).values() if a.champion}
    for version in sorted(champions):
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / MANIFEST
            await get_file(
                js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, names.object_name(version, MANIFEST), dest, _ignore
            )
            manifest = json.loads(dest.read_text())
        if best is None or (gates.warm_ndcg(manifest) or -1.0) > (gates.warm_ndcg(best) or -1.0):
            best = manifest
    return best


def _ignore(_: int) -> None:
    return None


def _holding(decisions: list[retention.Decision], version: str) -> str:
    """What fills the hub's store, and what would make room: for a publish that found it full."""
    others = [d for d in decisions if d.version != version]
    stray = sum(1 for d in others if d.orphan)
    held = (
        f"the hub holds {len(others) - stray} other versions"
        + (f" and {stray} runs of chunks no object names" if stray else "")
        + f" ({sum(d.bytes for d in others) / 1e9:.2f} GB)"
    )
    unused = [d for d in others if not d.keep]
    if unused:
        return (
            f"{held}, {len(unused)} of which no region uses ({sum(d.bytes for d in unused) / 1e9:.2f} GB): "
            f"edgerank prune deletes them (or publish with --keep N)"
        )
    why = ", ".join(f"{d.version} ({d.why})" for d in others)
    return f"{held}, all kept: {why}; raise max_file_store (edge_deploy/nats/hub.conf) or --keep fewer"


async def publish(
    js: JetStreamContext,
    bundle_dir: Path,
    key: signing.Ed25519PrivateKey | None,
    config: gates.GateConfig,
    progress: bool = True,
    keep: int = 0,
    incomplete_after_s: float = retention.INCOMPLETE_AFTER_S,
) -> PublishResult:
    t0 = time.perf_counter()
    bundle_dir = bundle_format.resolve(Path(bundle_dir))
    await ensure_hub(js)
    champion = await champion_manifest(js)
    results = gates.run_gates(bundle_dir, champion, config)
    for gate, line in results.items():
        log.info("gate %s: %s", gate, line)
    manifest = (
        signing.sign_bundle(bundle_dir, key) if key is not None else json.loads((bundle_dir / MANIFEST).read_text())
    )
    if "signature" not in manifest:
        raise ReplicatorError(
            f"bundle {manifest['version']} is not signed: pass --key or set EDGERANK_SIGNING_KEY (see edgerank keygen)"
        )
    version = str(manifest["version"])
    files = dict(manifest["files"])
    total = sum(int(m["size"]) for m in files.values())
    protect = {version: "being published"}
    pruned: list[retention.Decision] = []
    if keep > 0:
        decisions = await retention.prune(js, keep - 1, incomplete_after_s=incomplete_after_s, protect=protect)
        pruned = [d for d in decisions if not d.keep]
    uploaded = skipped = 0
    try:
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"publish {version}", disable=not progress) as bar:
            for name, meta in sorted(files.items()):
                path = bundle_dir / name
                if await put_file(js, names.object_name(version, name), path, meta["sha256"], bar.update):
                    uploaded += 1
                else:
                    skipped += 1
            manifest_path = bundle_dir / MANIFEST
            await put_file(js, names.object_name(version, MANIFEST), manifest_path, sha256_file(manifest_path), _ignore)
    except StoreFull as e:
        held = await retention.prune(js, max(keep - 1, 0), True, incomplete_after_s, protect)
        raise StoreFull(f"{e}; {_holding(held, version)}") from e
    announcement = {
        "version": version,
        "parent": manifest.get("parent"),
        "bytes": total,
        "files": sorted(files),
        "key_id": manifest["signature"]["key_id"],
        "gates": results,
    }
    await js.publish(names.ANNOUNCE_SUBJECT, json.dumps(announcement).encode(), headers={"Nats-Msg-Id": version})
    return PublishResult(
        version,
        total,
        uploaded,
        skipped,
        results,
        time.perf_counter() - t0,
        manifest["signature"]["key_id"],
        [d.version for d in pruned],
        sum(d.bytes for d in pruned),
    )
