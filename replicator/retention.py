"""Retention of the hub's bundle store: which published versions stay, and deleting the others.

The hub's object store is bounded (``max_file_store`` in ``edge_deploy/nats/hub.conf``) and a version is
a whole bundle, so published versions must go once nothing needs them. A version stays when

- a region's promotion state names it (champion, challenger, shadow, or one of the previous versions a
  rollback goes back to), or
- it is one of the newest ``keep`` complete versions (what an operator may still promote), or
- its upload is incomplete (no manifest yet) and was written to less than ``incomplete_after_s`` ago: a
  publish may be running. An older incomplete upload is a publish that failed; it goes.

Everything else is deleted, its manifest first, so that no region takes it for a whole version while it
goes. So are runs of chunks that no object names (an upload killed mid-file: :mod:`replicator.orphans`)
once they are as old as a failed publish's. The regions' mirrors follow (:mod:`replicator.mirrors`): a
purge on the hub does not reach a mirror, so each region's replicator purges its own. A promotion racing
a prune is re-checked before each deletion, so a version promoted after the plan was made stays;
operators promote recent versions, which ``keep`` covers anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from replicator import names, orphans, promotions
from replicator.nats_io import StoredObject, list_objects

log = logging.getLogger(__name__)

INCOMPLETE_AFTER_S = 3600.0


@dataclass(frozen=True)
class StoredVersion:
    version: str
    complete: bool  # its manifest is stored: every file was uploaded
    bytes: int
    objects: tuple[str, ...]  # object names, the manifest first
    written_at: dt.datetime  # when its last object was stored (for a complete version: its manifest)


@dataclass(frozen=True)
class Decision:
    version: str
    keep: bool
    why: str
    bytes: int
    complete: bool
    written_at: dt.datetime
    orphan: bool = False  # not a version: chunks no object names (``version`` is "chunks <nuid>")


def stored_versions(objects: Iterable[StoredObject]) -> dict[str, StoredVersion]:
    """Group a bundle bucket's live objects (``<version>/<file>``) by version."""
    groups: dict[str, list[StoredObject]] = {}
    for o in objects:
        version, _, file = str(o.meta.get("name", "")).partition("/")
        if version and file and not o.meta.get("deleted"):
            groups.setdefault(version, []).append(o)
    out = {}
    for version, group in groups.items():
        manifest = [o for o in group if o.meta["name"] == names.object_name(version, names.MANIFEST_OBJECT)]
        rest = sorted((o for o in group if o not in manifest), key=lambda o: str(o.meta["name"]))
        out[version] = StoredVersion(
            version=version,
            complete=bool(manifest),
            bytes=sum(int(o.meta.get("size") or 0) for o in group),
            objects=tuple(str(o.meta["name"]) for o in (*manifest, *rest)),
            written_at=manifest[0].stored_at if manifest else max(o.stored_at for o in group),
        )
    return out


def plan(
    versions: Mapping[str, StoredVersion],
    referenced: Mapping[str, list[str]],
    keep: int,
    now: dt.datetime,
    incomplete_after_s: float = INCOMPLETE_AFTER_S,
    protect: Mapping[str, str] | None = None,
) -> list[Decision]:
    """What to keep and what to delete, newest first. ``referenced``: version -> the regions' uses of it;
    ``protect``: version -> why it stays whatever else holds (the version a publish is uploading)."""
    if keep < 0:
        raise ValueError(f"keep: must not be negative, got {keep}")
    protect = protect or {}
    ordered = sorted(versions.values(), key=lambda v: (v.written_at, v.version), reverse=True)
    newest = [v.version for v in ordered if v.complete][:keep]
    out = []
    for v in ordered:
        age = (now - v.written_at).total_seconds()
        if v.version in protect:
            keep_it, why = True, protect[v.version]
        elif v.version in referenced:
            keep_it, why = True, ", ".join(referenced[v.version])
        elif v.version in newest:
            keep_it, why = True, f"one of the newest {keep}"
        elif not v.complete and age < incomplete_after_s:
            keep_it, why = True, f"upload in progress? last written {age:.0f} s ago"
        elif not v.complete:
            keep_it, why = False, f"incomplete upload, last written {age:.0f} s ago"
        else:
            keep_it, why = False, f"no region uses it; older than the newest {keep}"
        out.append(Decision(v.version, keep_it, why, v.bytes, v.complete, v.written_at))
    return out


async def referenced(js: JetStreamContext) -> dict[str, list[str]]:
    """version -> its uses in the hub's promotion state ("champion of eu-west", "previous of us-east", ...)."""
    out: dict[str, list[str]] = {}
    for region, a in (await promotions.all_regions(js)).items():
        uses = [("champion", a.champion), ("challenger", a.challenger), ("shadow", a.shadow)]
        uses += [("previous", v) for v in a.previous]
        for role, version in uses:
            if version:
                out.setdefault(version, []).append(f"{role} of {region}")
    return out


async def prune(
    js: JetStreamContext,
    keep: int,
    dry_run: bool = False,
    incomplete_after_s: float = INCOMPLETE_AFTER_S,
    protect: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> list[Decision]:
    """Apply :func:`plan` to the hub's bundle store (``js``: a context for the hub's domain), and purge the
    chunks no object names that are older than ``incomplete_after_s`` (listed after the versions; younger
    ones are listed as kept: an upload in progress writes its meta document last)."""
    objects = await list_objects(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET)
    versions = stored_versions(objects)
    now = now or dt.datetime.now(dt.UTC)
    decisions = plan(versions, await referenced(js), keep, now, incomplete_after_s, protect)
    found = await orphans.find(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, objects, 0.0, now)
    leftovers, stray = [], []
    for o in found:
        age = (now - o.written_at).total_seconds()
        old = age >= incomplete_after_s
        why = "an upload killed mid-file" if old else "an upload in progress?"
        leftovers.append(
            Decision(f"chunks {o.nuid}", not old, f"{o.chunks} chunks no object names ({why}), last written "
                     f"{age:.0f} s ago", o.bytes, False, o.written_at, orphan=True)
        )  # fmt: skip
        if old:
            stray.append(o)
    if dry_run:
        return decisions + leftovers
    await orphans.purge(js, names.BUNDLES_STREAM, names.BUNDLES_BUCKET, stray)
    if all(d.keep for d in decisions):
        return decisions + leftovers
    store = await js.object_store(names.BUNDLES_BUCKET)
    out = []
    for d in decisions:
        if not d.keep:
            uses = (await referenced(js)).get(d.version)
            if uses:  # promoted since the plan was made
                out.append(Decision(d.version, True, ", ".join(uses), d.bytes, d.complete, d.written_at))
                continue
            for name in versions[d.version].objects:
                try:
                    await store.delete(name)
                except NotFoundError:  # deleted meanwhile (another prune)
                    log.debug("%s: already deleted", name)
            log.info("pruned %s (%.1f MB): %s", d.version, d.bytes / 1e6, d.why)
        out.append(d)
    return out + leftovers
