"""A region replicator's marker that it verified a bundle, so that the node need not hash it again.

The replicator checks every file of a bundle against the signed manifest's
sha256 as the chunks arrive, then renames the bundle into the region's
directory (:mod:`replicator.fetch`). A node following that directory used to
hash every file again before loading it: 1.2 GB at 1M items, 0.7 to 1.4 s of
CPU on each node in the middle of a promotion, for no new information. So,
as it installs a bundle, the replicator writes
``D/.verified/<version>.json``: the sha256 of the manifest it verified, and
the identity of every file it wrote (device, inode, size, modification and
change times, in nanoseconds). A node that finds a marker matching the
manifest and every file exactly skips its own sha256 pass
(:meth:`node.bundle.LoadedBundle.load`); anything else (no marker, a marker
for other bytes, a file replaced, rewritten, truncated, touched, re-linked or
chmod-ed since: each of these changes its inode or its change time, which no
user can set) gets the full pass, as a bundle from anywhere else always does.

Threat model. The node's own sha256 pass never defended against an attacker:
the node does not check the manifest's signature (the replicator does), so
whoever can write the region directory can write a manifest that matches any
files. The pass defends against accidents between the replicator's check and
the node's load: a partial or concurrent write, a file replaced or edited by
hand or by a buggy tool, a copy that went wrong. Every one of those changes a
file's size, inode or change time, which the marker records; the marker is
written by the same user into the same directory as the files, so it is
exactly as trustworthy as they are. What the marker does not catch is silent
corruption of the bytes on disk (a flipped bit that leaves the metadata
alone) after the replicator verified them; the node's pass would have caught
it only if it happened in the seconds or hours between the two checks.
Operators who want that pass anyway load with ``trust_marker=False``.

The marker also names the content checks the replicator ran on the arrays
before it installed the bundle (``checked``: :data:`node.bundle.CONTENT_CHECKS`,
:func:`node.bundle.check_contents`): the id orders, the seen-items rows, the
item times. They are a pure function of the verified bytes, so a node that
finds them in a marker that vouches for the files skips them, as it skips
the sha256 pass: once per version per region instead of once per node per
load (at 1M items, 60 to 140 ms of a load's CPU beside the requests). A
marker without them (an older replicator's) vouches for the bytes only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.bundle import MANIFEST, write_atomic

log = logging.getLogger(__name__)

MARKERS_DIR = ".verified"
FORMAT = 1


def marker_path(bundle_dir: Path) -> Path:
    return bundle_dir.parent / MARKERS_DIR / f"{bundle_dir.name}.json"


def _identity(path: Path) -> list[int]:
    st = os.stat(path, follow_symlinks=False)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _identities(bundle_dir: Path, manifest: dict[str, Any]) -> dict[str, list[int]]:
    return {name: _identity(bundle_dir / name) for name in [MANIFEST, *sorted(manifest.get("files") or {})]}


def write(bundle_dir: Path, staged: Path | None = None, checked: Sequence[str] = ()) -> Path:
    """Record that the files of ``bundle_dir`` (every one checked by the replicator) are verified as they are now.

    ``staged``: the files are still in this staging directory, to be renamed
    into ``bundle_dir`` in one move (which changes no file's identity). The
    marker is written first, so that a node never sees the bundle without it.
    ``checked``: the content checks the bundle passed (:func:`checked` reads them back).
    """
    src = bundle_dir if staged is None else staged
    raw = (src / MANIFEST).read_bytes()
    manifest = json.loads(raw)
    body = {
        "format": FORMAT,
        "version": bundle_dir.name,
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "files": _identities(src, manifest),
        "checked": sorted(checked),
        "verified_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }
    path = marker_path(bundle_dir)
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, json.dumps(body, sort_keys=True).encode())
    return path


def check(bundle_dir: Path, manifest: dict[str, Any]) -> str | None:
    """None if a marker vouches for ``bundle_dir`` as it is now (with ``manifest``); else why not."""
    path = marker_path(bundle_dir)
    try:
        marker = json.loads(path.read_bytes())
        raw = (bundle_dir / MANIFEST).read_bytes()
    except FileNotFoundError:
        return "no verified marker"
    except (OSError, ValueError) as e:
        return f"unreadable verified marker: {e}"
    if not isinstance(marker, dict) or marker.get("format") != FORMAT or marker.get("version") != bundle_dir.name:
        return "the verified marker is for another version or format"
    if marker.get("manifest_sha256") != hashlib.sha256(raw).hexdigest() or json.loads(raw) != manifest:
        return "the manifest changed since it was verified"
    try:
        now = _identities(bundle_dir, manifest)
    except OSError as e:
        return f"cannot stat a file: {e}"
    recorded = marker.get("files")
    if not isinstance(recorded, dict) or set(recorded) != set(now):
        return "the verified marker lists other files"
    changed = sorted(name for name, ident in now.items() if recorded[name] != ident)
    if changed:
        return f"changed since verified: {', '.join(changed)}"
    return None


def checked(bundle_dir: Path) -> frozenset[str]:
    """The content checks the marker of ``bundle_dir`` records; only meaningful once :func:`check` vouched for
    the files. None (an empty set) for a marker that names none, or none at all."""
    try:
        names = json.loads(marker_path(bundle_dir).read_bytes()).get("checked")
    except (OSError, ValueError, AttributeError):
        return frozenset()
    if not isinstance(names, list):
        return frozenset()
    return frozenset(n for n in names if isinstance(n, str))


def remove(bundle_dir: Path) -> None:
    marker_path(bundle_dir).unlink(missing_ok=True)
