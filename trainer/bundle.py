"""The bundle: an immutable, versioned directory that a node serves.

A bundle is written into a hidden staging directory beside its final place
and renamed into place only once every file and the manifest are on disk, so
that a half-written bundle never looks complete. ``LATEST`` in the bundle
root names the newest complete version and is replaced atomically too.

Files (all but ``manifest.json`` are listed in the manifest with sha256 and
size):

=========================  ==============================================
``ranker.onnx``            the quantized student; input ``features`` f32
                           [N, F], output ``score`` f32 [N]
``teacher.lgb.txt``        the LightGBM teacher the student was checked on
``index.usearch``          usearch index over the item embeddings (keys =
                           rows): session neighbours
``ivf_centroids.npy``      f32 [nlist, D], the IVF index of the embeddings
                           (:mod:`trainer.ivf`): the user retrieval
``ivf_offsets.npy``        u32 [nlist + 1], list boundaries in ``ivf_items``
``ivf_items.npy``          u32 [n_items], item rows, list after list
``ivf_codes.npy``          i8 [n_items, D], their 8-bit codes
``ivf_scale.npy``          f32 [D], a code's step per dimension
``item_ids.npy``           str [n_items], the catalog's item ids
``item_id_order.npy``      i64 [n_items], the stable argsort of
                           ``item_ids``: the node's id lookup
                           binary-searches the ids in this order and only
                           checks it (:class:`node.bundle.IdIndex`)
``item_titles.json``       list of titles, for people
``item_primary_genre.npy`` u16 [n_items], first genre (G when none)
``item_first_ts.npy``      f64 [n_items], first interaction (-1 unknown)
``item_rows.npy``          f32 [n_items, S], the item arrays packed as the
                           hot path reads them, one 64-byte-aligned row
                           per item: ``[emb | genre | dense | first_ts]``
                           (``emb`` f32 [D], unit norm; ``genre`` f32 [G],
                           one-hot; ``dense`` f32 [5 + G], the item
                           feature block), ``first_ts`` as the two f32
                           halves of its f64 bits, zero padding to S (a
                           multiple of 16: 96 at D = 64, G = 12); written
                           by :func:`hotpath.write_item_rows`,
                           memory-mapped by the node
                           (:meth:`hotpath.Assembler.open`); every reader
                           takes the item arrays from it as views
                           (:mod:`hotpath.item_rows`)
``user_ids.npy``           str [n_users], users with batch features
``user_id_order.npy``      i64 [n_users], as ``item_id_order.npy``
``user_dense.npy``         f32 [n_users, 4 + G]
``user_emb.npy``           f32 [n_users, D]
``user_last_ts.npy``       f64 [n_users]
``user_seen_indptr.npy``   i64 [n_users + 1], CSR row pointers
``user_seen_items.npy``    u32 [nnz], seen items per user, oldest first
``popularity.json``        {"lists": {name: [item index, ...]}}
``golden.json``            requests with the scores the trainer recorded
=========================  ==============================================

``FORMAT`` 3 dropped ``item_emb.npy``, ``item_dense.npy`` and
``item_genre.npy`` (the same numbers as ``item_rows.npy``: 372 MB of 1.7 GB at
1M items) and added the id orders; format 2 added ``item_rows.npy``. A reader
refuses any other format: build the bundle again.

Optional (:data:`OPTIONAL_FILES`; listed in the manifest when present), rows
aligned with ``user_seen_items``, for the feature updater to seed online
histories with: ``user_seen_ts.npy`` f64, ``user_seen_values.npy`` f64,
``user_seen_positive.npy`` bool.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 3
MANIFEST = "manifest.json"
LATEST = "LATEST"

REQUIRED_FILES = (
    "ranker.onnx",
    "teacher.lgb.txt",
    "index.usearch",
    "ivf_centroids.npy",
    "ivf_offsets.npy",
    "ivf_items.npy",
    "ivf_codes.npy",
    "ivf_scale.npy",
    "item_ids.npy",
    "item_id_order.npy",
    "item_titles.json",
    "item_primary_genre.npy",
    "item_first_ts.npy",
    "item_rows.npy",
    "user_ids.npy",
    "user_id_order.npy",
    "user_dense.npy",
    "user_emb.npy",
    "user_last_ts.npy",
    "user_seen_indptr.npy",
    "user_seen_items.npy",
    "popularity.json",
    "golden.json",
)


OPTIONAL_FILES = ("user_seen_ts.npy", "user_seen_values.npy", "user_seen_positive.npy")


class BundleError(Exception):
    """A bundle is missing, incomplete, or fails verification."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def new_version(now: dt.datetime | None = None) -> str:
    """A sortable, unique version name: ``20261122T041500Z-1a2b3c``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Staging:
    """A bundle being written. Obtain one from :func:`stage_bundle`."""

    def __init__(self, path: Path, version: str):
        self.path = path
        self.version = version

    def file(self, name: str) -> Path:
        """The path to write a file called ``name`` to (for writers that want a path)."""
        if "/" in name or name.startswith(".") or name == MANIFEST:
            raise BundleError(f"bad bundle file name {name!r}")
        return self.path / name

    def save_npy(self, name: str, array: np.ndarray) -> None:
        np.save(self.file(name), np.ascontiguousarray(array), allow_pickle=False)

    def save_json(self, name: str, obj: Any) -> None:
        self.file(name).write_text(json.dumps(obj, sort_keys=True))

    def save_ids(self, kind: str, ids: np.ndarray) -> None:
        """``{kind}_ids.npy`` (``kind`` is ``item`` or ``user``) and their sorted order, ``{kind}_id_order.npy``."""
        self.save_npy(f"{kind}_ids.npy", ids)
        self.save_npy(f"{kind}_id_order.npy", id_order(ids))


def id_order(ids: np.ndarray) -> np.ndarray:
    """The stable argsort of a bundle's ids, int64: ``*_id_order.npy`` (the node's lookups search the ids
    through it as mapped; numpy's ``searchsorted`` would copy any other dtype to intp at every call)."""
    return np.argsort(ids, kind="stable").astype(np.int64)


@contextmanager
def stage_bundle(root: Path, manifest: dict[str, Any]) -> Iterator[Staging]:
    """Write a bundle under ``root``; on success it appears as ``root/<version>``.

    ``manifest`` must carry ``version``; the file table, ``format`` and
    ``created_at`` are filled in here. If the body raises, the staging
    directory is removed and nothing appears.
    """
    version = manifest["version"]
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if final.exists():
        raise BundleError(f"bundle {version} already exists in {root}")
    staging = Staging(root / f".staging-{version}-{uuid.uuid4().hex[:8]}", version)
    staging.path.mkdir()
    try:
        yield staging
        files = {}
        for p in sorted(staging.path.iterdir()):
            with open(p, "rb") as f:
                os.fsync(f.fileno())
            files[p.name] = {"sha256": sha256_file(p), "size": p.stat().st_size}
        missing = [f for f in REQUIRED_FILES if f not in files]
        if missing:
            raise BundleError(f"bundle {version} is missing {', '.join(missing)}")
        full = {
            **manifest,
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": files,
        }
        write_atomic(staging.path / MANIFEST, json.dumps(full, indent=2, sort_keys=True).encode())
        os.rename(staging.path, final)
        fsync_dir(root)
        write_atomic(root / LATEST, (version + "\n").encode())
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise


def latest_version(root: Path) -> str | None:
    """The version ``LATEST`` names, or None when the root has no bundle yet."""
    try:
        version = (root / LATEST).read_text().strip()
    except FileNotFoundError:
        return None
    return version if (root / version / MANIFEST).is_file() else None


def resolve(path: Path) -> Path:
    """A bundle directory from either a bundle directory or a bundle root."""
    if (path / MANIFEST).is_file():
        return path
    version = latest_version(path)
    if version is None:
        raise BundleError(f"no bundle at {path} (no {MANIFEST}, no {LATEST})")
    return path / version


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((bundle_dir / MANIFEST).read_text())
    except FileNotFoundError as e:
        raise BundleError(f"{bundle_dir} has no {MANIFEST}") from e
    except json.JSONDecodeError as e:
        raise BundleError(f"{bundle_dir / MANIFEST} is not valid JSON: {e}") from e
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{bundle_dir}: bundle format {manifest.get('format')!r}, this code reads format {FORMAT} only "
            f"(format {FORMAT} takes the item embeddings, dense features and genres from item_rows.npy and "
            "carries the ids' sorted order): build the bundle again"
        )
    return manifest


def verify_files(bundle_dir: Path, manifest: dict[str, Any]) -> None:
    """Check every file's size and sha256, and that no file is missing or extra."""
    verify_names(bundle_dir, manifest)
    for name, meta in (manifest.get("files") or {}).items():
        if sha256_file(bundle_dir / name) != meta["sha256"]:
            raise BundleError(f"{bundle_dir}: {name} fails its sha256 check")


def verify_names(bundle_dir: Path, manifest: dict[str, Any]) -> None:
    """Check that exactly the manifest's files are present, with their sizes (no content is read)."""
    listed = manifest.get("files") or {}
    for name in REQUIRED_FILES:
        if name not in listed:
            raise BundleError(f"{bundle_dir}: manifest does not list {name}")
    present = {p.name for p in bundle_dir.iterdir()} - {MANIFEST}
    extra = present - set(listed)
    if extra:
        raise BundleError(f"{bundle_dir}: unexpected files {sorted(extra)}")
    for name, meta in listed.items():
        if "/" in name or name.startswith("."):
            raise BundleError(f"{bundle_dir}: manifest names a file outside the bundle: {name!r}")
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"{bundle_dir}: {name} is missing")
        if path.stat().st_size != meta["size"]:
            raise BundleError(f"{bundle_dir}: {name} has size {path.stat().st_size}, expected {meta['size']}")
