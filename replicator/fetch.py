"""Download one version into a region's staging directory, verify it, install it.

The manifest comes first and is checked before any file is fetched: its
signature by the trusted key, its version, and its file names (plain names of
the bundle format only; nothing like ``../x``, nothing unexpected). Each file
is then read with an ordered consumer and checked against the manifest's size
and sha256, and once all are there, what the arrays hold
(:func:`node.bundle.check_contents`, named in the verified marker so that the
region's nodes skip those checks). Files already complete in the staging directory (from a run that
was interrupted) are kept, so a restarted download resumes file by file. A
bundle that fails verification is deleted from staging; one that fails in
transfer is kept for the next try.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from tqdm import tqdm

from node.bundle import check_contents
from replicator import names, signing, verified
from replicator.errors import ReplicatorError, VerificationError
from replicator.nats_io import get_file
from replicator.region_dir import RegionDir
from trainer import bundle as bundle_format
from trainer.bundle import MANIFEST, OPTIONAL_FILES, REQUIRED_FILES, BundleError, sha256_file

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
ALLOWED_FILES = frozenset(REQUIRED_FILES) | frozenset(OPTIONAL_FILES)


class DiskFull(ReplicatorError):
    """Staging ran out of space; the staging directory was removed."""


def check_manifest(manifest: dict[str, Any], version: str, trusted: signing.Ed25519PublicKey) -> dict[str, Any]:
    """Signature, version and file names; returns the file table."""
    signing.verify_manifest(manifest, trusted)
    if manifest.get("version") != version:
        raise VerificationError(f"bundle {version}: manifest says version {manifest.get('version')!r}")
    if manifest.get("format") != bundle_format.FORMAT:
        raise VerificationError(f"bundle {version}: unsupported format {manifest.get('format')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise VerificationError(f"bundle {version}: manifest has no file table")
    for name, meta in files.items():
        if not SAFE_NAME.match(name) or ".." in name:
            raise VerificationError(f"bundle {version}: manifest names a file outside the bundle: {name!r}")
        if name not in ALLOWED_FILES:
            raise VerificationError(f"bundle {version}: manifest names an unexpected file {name!r}")
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("size"), int)
            or not isinstance(meta.get("sha256"), str)
        ):
            raise VerificationError(f"bundle {version}: bad file entry for {name!r}")
    missing = sorted(set(REQUIRED_FILES) - set(files))
    if missing:
        raise VerificationError(f"bundle {version}: manifest does not list {', '.join(missing)}")
    return files


def _complete(path: Path, meta: dict[str, Any]) -> bool:
    """A file left by an interrupted run: kept if it is whole (read and hashed once, on resume only)."""
    return path.is_file() and path.stat().st_size == meta["size"] and sha256_file(path) == meta["sha256"]


def _check_names(staging: Path, version: str, files: dict[str, Any]) -> None:
    """Exactly the manifest's files (and the manifest) are staged; their content was checked as it arrived."""
    present = {p.name for p in staging.iterdir()} - {MANIFEST}
    if present != set(files):
        raise VerificationError(
            f"bundle {version}: staged files differ from the manifest: "
            f"missing {sorted(set(files) - present)}, extra {sorted(present - set(files))}"
        )


async def fetch_version(
    js: JetStreamContext,
    version: str,
    region: RegionDir,
    trusted: signing.Ed25519PublicKey,
    progress: bool = False,
    write: Callable[[Any, bytes], None] | None = None,
) -> Path:
    """Download, verify and install ``version`` into ``region``; returns its directory."""
    staging = region.staging(version)
    try:
        staging.mkdir(exist_ok=True)
        manifest_path = staging / MANIFEST
        await get_file(
            js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, names.object_name(version, MANIFEST), manifest_path,
            lambda _: None, write,
        )  # fmt: skip
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError as e:
            raise VerificationError(f"bundle {version}: manifest is not JSON: {e}") from e
        files = check_manifest(manifest, version, trusted)
        for stray in staging.iterdir():
            if stray.name != MANIFEST and stray.name not in files:
                stray.unlink()
        total = sum(int(m["size"]) for m in files.values())
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"fetch {version}", disable=not progress) as bar:
            for name, meta in sorted(files.items()):
                dest = staging / name
                if _complete(dest, meta):
                    bar.update(meta["size"])
                    continue
                # The sha256 is computed over the chunks as they arrive and checked before the file is
                # renamed into staging: no file is read back (at 1 GB, each extra pass costs seconds).
                await get_file(
                    js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, names.object_name(version, name), dest,
                    bar.update, write, expect=(int(meta["size"]), str(meta["sha256"])),
                )  # fmt: skip
        _check_names(staging, version, files)
        # What the arrays hold, checked once here for every node of the region (off the event loop: about 0.1 s
        # of CPU at 1M items); a bundle that fails is refused like a bad checksum, before any node tries it.
        try:
            checked = await asyncio.to_thread(check_contents, staging, manifest)
        except BundleError as e:
            raise VerificationError(f"bundle {version}: {e}") from e
        # The node need not hash these files again nor check their contents (replicator.verified); the marker is
        # written before the rename, which changes no file's identity, so that the node never finds the bundle
        # without it.
        verified.write(region.path(version), staged=staging, checked=checked)
        return region.install(staging, version)
    except VerificationError:
        region.discard(staging)
        raise
    except OSError as e:
        if e.errno == errno.ENOSPC:
            region.discard(staging)
            raise DiskFull(f"bundle {version}: disk full while staging in {region.root}; staging removed") from e
        raise
