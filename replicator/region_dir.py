"""A region's bundle directory: verified bundles, staging, the assignment file, pruning.

Layout of ``D``::

    D/<version>/             complete, verified bundles (renamed into place)
    D/.verified/<version>.json  the replicator's marker that it verified them (replicator.verified)
    D/.staging-<version>/    a download in progress (kept across restarts to resume)
    D/assignment.json        what the node serves: champion, challenger, percent, shadow
    D/LATEST                 the champion, for a node started without --follow
    D/nodes/<node_id>.json   what each node reports it serves
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from replicator import names, verified
from replicator.assignment import Assignment
from trainer.bundle import LATEST, MANIFEST, fsync_dir, write_atomic

log = logging.getLogger(__name__)


class RegionDir:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, version: str) -> Path:
        return self.root / version

    def has(self, version: str | None) -> bool:
        return bool(version) and (self.root / str(version) / MANIFEST).is_file()

    def staging(self, version: str) -> Path:
        return self.root / f".staging-{version}"

    def versions(self) -> list[str]:
        """Complete versions on disk, newest install first."""
        found = [p for p in self.root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)]

    def install(self, staging: Path, version: str) -> Path:
        """Move a verified staging directory into place with one rename."""
        final = self.path(version)
        os.rename(staging, final)
        os.utime(final)  # install time orders pruning
        fsync_dir(self.root)
        return final

    def discard(self, path: Path) -> None:
        """Remove a directory so that no half-deleted bundle is ever visible under its name."""
        if not path.exists():
            return
        trash = self.root / f".trash-{path.name}-{uuid.uuid4().hex[:6]}"
        os.rename(path, trash)
        shutil.rmtree(trash)

    def read_assignment(self) -> Assignment | None:
        try:
            return Assignment.from_json((self.root / names.ASSIGNMENT_FILE).read_bytes())
        except FileNotFoundError:
            return None

    def write_assignment(self, a: Assignment) -> None:
        write_atomic(self.root / names.ASSIGNMENT_FILE, a.to_json())
        if a.champion:
            write_atomic(self.root / LATEST, (a.champion + "\n").encode())

    def prune(self, keep: set[str], newest: int) -> list[str]:
        """Delete complete versions beyond the ``newest`` most recent that ``keep`` does not name."""
        removed = []
        for i, version in enumerate(self.versions()):
            if version in keep or i < newest:
                continue
            verified.remove(self.path(version))
            self.discard(self.path(version))
            removed.append(version)
        for marker in (self.root / verified.MARKERS_DIR).glob("*.json"):
            if not (self.root / marker.stem / MANIFEST).is_file():
                marker.unlink(missing_ok=True)
        for p in self.root.glob(".trash-*"):
            shutil.rmtree(p, ignore_errors=True)
        if removed:
            log.info("pruned %s", ", ".join(removed))
        return removed

    def node_reports(self) -> dict[str, dict[str, Any]]:
        out = {}
        for p in sorted((self.root / names.NODES_DIR).glob("*.json")):
            try:
                out[p.stem] = json.loads(p.read_text())
            except (OSError, ValueError) as e:
                log.warning("unreadable node report %s: %s", p, e)
        return out
