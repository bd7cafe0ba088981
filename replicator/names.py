"""Names of the JetStream buckets, streams and subjects, shared by every replicator module."""

from __future__ import annotations

# Object store holding every published bundle file as "<version>/<file>".
BUNDLES_BUCKET = "edgerank-bundles"
BUNDLES_STREAM = f"OBJ_{BUNDLES_BUCKET}"
# KV bucket: region -> promotion state (Assignment JSON). Written on the hub only.
PROMOTIONS_BUCKET = "edgerank-promotions"
PROMOTIONS_STREAM = f"KV_{PROMOTIONS_BUCKET}"
# KV bucket: "<region>.<node_id>" -> what that node serves and its health.
NODES_BUCKET = "edgerank-nodes"
# KV bucket local to a region's leaf: overrides written while cut off from the hub.
OVERRIDES_BUCKET = "edgerank-overrides"
OVERRIDES_STREAM = f"KV_{OVERRIDES_BUCKET}"
# Stream of announcements, one message per published version (Nats-Msg-Id = version).
ANNOUNCE_STREAM = "EDGERANK_BUNDLES"
ANNOUNCE_SUBJECT = "edgerank.bundles.announce"

CHUNK_SIZE = 1 << 20  # 1 MiB object store chunks
PROMOTION_HISTORY = 32
MANIFEST_OBJECT = "manifest.json"

# Files the replicator writes into a region's bundle directory.
ASSIGNMENT_FILE = "assignment.json"
NODES_DIR = "nodes"


def object_name(version: str, file: str) -> str:
    return f"{version}/{file}"


def kv_subject(bucket: str, key: str) -> str:
    return f"$KV.{bucket}.{key}"


def meta_subject(bucket: str, name: str) -> str:
    import base64

    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


def meta_subject_all(bucket: str) -> str:
    return f"$O.{bucket}.M.>"


def chunk_subject(bucket: str, nuid: str) -> str:
    return f"$O.{bucket}.C.{nuid}"
