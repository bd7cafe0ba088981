"""``publish``: gate a bundle, sign it, upload its files, announce its version.

Files go to the hub's object store as ``<version>/<file>`` in 1 MiB chunks;
``manifest.json`` goes last, so a version whose manifest is in the store has
all its files there. An upload is skipped when an identical object is already
stored, and the announcement carries ``Nats-Msg-Id: <version>``, so publishing
the same bundle twice changes nothing.
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

from replicator import gates, names, promotions, signing
from replicator.errors import ReplicatorError
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


async def publish(
    js: JetStreamContext,
    bundle_dir: Path,
    key: signing.Ed25519PrivateKey | None,
    config: gates.GateConfig,
    progress: bool = True,
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
    uploaded = skipped = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"publish {version}", disable=not progress) as bar:
        for name, meta in sorted(files.items()):
            if await put_file(js, names.object_name(version, name), bundle_dir / name, meta["sha256"], bar.update):
                uploaded += 1
            else:
                skipped += 1
        manifest_path = bundle_dir / MANIFEST
        await put_file(js, names.object_name(version, MANIFEST), manifest_path, sha256_file(manifest_path), _ignore)
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
        version, total, uploaded, skipped, results, time.perf_counter() - t0, manifest["signature"]["key_id"]
    )
