"""The validation gates a bundle passes before it is published.

In order: ``checksums`` (every file's size and sha256, no missing or extra
file), ``schema`` (the feature schema hash and names are this code's),
``embedding_space`` (the arrays and index agree on the space; a new space
against the champion needs ``allow_new_space``), ``quality`` (the student's
warm ndcg@10 against the champion's, with a tolerance), ``latency`` (the
golden requests through the node's assembler and ONNX ranker, P99 within a
budget) and ``coverage`` (finite features; items with an embedding). The first
gate that fails raises :class:`GateRefused` naming it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from node.bundle import LoadedBundle
from replicator.errors import GateRefused
from trainer import bundle as bundle_format
from trainer import features as feature_defs
from trainer.bundle import BundleError
from trainer.rows import ItemTables


@dataclass(frozen=True)
class GateConfig:
    ndcg_tolerance: float = 0.02  # relative drop of warm ndcg@10 allowed against the champion
    max_rank_p99_ms: float = 20.0  # assemble + score of one golden request, P99
    latency_rounds: int = 30
    min_item_coverage: float = 0.95  # share of items with a non-zero embedding
    allow_new_space: bool = False


def warm_ndcg(manifest: dict[str, Any]) -> float | None:
    try:
        return float(manifest["metrics"]["warm"]["student"]["ndcg@10"])
    except (KeyError, TypeError, ValueError):
        return None


def run_gates(bundle_dir: Path, champion: dict[str, Any] | None, config: GateConfig) -> dict[str, str]:
    """Run every gate; returns {gate: one-line result}. ``champion`` is the champion's manifest, if any."""
    results: dict[str, str] = {}
    try:
        manifest = bundle_format.read_manifest(bundle_dir)
        bundle_format.verify_files(bundle_dir, manifest)
    except BundleError as e:
        raise GateRefused("checksums", str(e)) from e
    results["checksums"] = f"{len(manifest['files'])} files verified"

    genres, dim = list(manifest.get("genres", [])), int(manifest.get("embedding_dim", 0))
    expected = feature_defs.schema_hash(genres, dim)
    if manifest.get("feature_schema_hash") != expected:
        raise GateRefused(
            "schema", f"feature_schema_hash {manifest.get('feature_schema_hash')!r}, code has {expected!r}"
        )
    if list(manifest.get("feature_names", [])) != feature_defs.feature_names(genres):
        raise GateRefused("schema", "feature_names differ from the feature definitions")
    results["schema"] = f"hash {expected}"

    space = manifest.get("embedding_space_id")
    if not space:
        raise GateRefused("embedding_space", "manifest has no embedding_space_id")
    try:  # the item embeddings are a view of the item rows, whose stride the manifest's dimensions fix
        ItemTables.open(bundle_dir, manifest)
    except (KeyError, ValueError) as e:
        raise GateRefused("embedding_space", f"item_rows.npy: {type(e).__name__}: {e}") from e
    for name in ("user_emb.npy", "ivf_centroids.npy", "ivf_codes.npy"):
        shape = np.load(bundle_dir / name, mmap_mode="r", allow_pickle=False).shape
        if len(shape) != 2 or shape[1] != dim:
            raise GateRefused("embedding_space", f"{name} has shape {shape}, embedding_dim is {dim}")
    if champion is not None:
        if int(champion.get("embedding_dim", -1)) != dim and not config.allow_new_space:
            raise GateRefused(
                "embedding_space", f"dim {dim} differs from the champion's {champion.get('embedding_dim')}"
            )
        if champion.get("embedding_space_id") != space and not config.allow_new_space:
            raise GateRefused(
                "embedding_space",
                f"space {space} differs from the champion's {champion.get('embedding_space_id')} "
                "(pass --allow-new-space once online user embeddings are rebuilt for it)",
            )
    results["embedding_space"] = str(space)

    ndcg = warm_ndcg(manifest)
    if champion is not None:
        base = warm_ndcg(champion)
        if base is not None:
            if ndcg is None:
                raise GateRefused("quality", "manifest carries no metrics.warm.student.ndcg@10")
            floor = base * (1.0 - config.ndcg_tolerance)
            if ndcg < floor:
                raise GateRefused(
                    "quality",
                    f"warm ndcg@10 {ndcg:.4f} < champion {champion.get('version')} {base:.4f} "
                    f"- {config.ndcg_tolerance:.0%} = {floor:.4f}",
                )
            results["quality"] = f"warm ndcg@10 {ndcg:.4f} vs champion {base:.4f}"
    results.setdefault("quality", "no champion to compare with" if champion is None else "champion has no metrics")

    try:
        loaded = LoadedBundle.load(bundle_dir)
        loaded.warm_up()
    except BundleError as e:
        raise GateRefused("latency", f"the node cannot load or warm the bundle: {e}") from e
    p99 = _rank_p99_ms(loaded, config.latency_rounds)
    if p99 > config.max_rank_p99_ms:
        raise GateRefused("latency", f"assemble+score P99 {p99:.2f} ms > {config.max_rank_p99_ms} ms")
    results["latency"] = f"assemble+score P99 {p99:.2f} ms over {len(loaded.golden)} golden requests"

    results["coverage"] = _coverage(loaded, config)
    return results


def _golden_inputs(b: LoadedBundle) -> list[tuple[Any, ...]]:
    g = len(b.genres)
    out = []
    for case in b.golden:
        items = np.array([b.item_index[str(x)] for x in case["items"]], dtype=np.uint32)
        row = b.user_index.get(str(case["user_id"]))
        if row is None:
            dense, emb, last = (
                np.zeros(feature_defs.user_dim(g), np.float32),
                np.zeros(b.embedding_dim, np.float32),
                -1.0,
            )
        else:
            dense, emb, last = b.user_dense[row], b.user_emb[row], float(b.user_last_ts[row])
        now = float(case["now_ts"])
        genre = feature_defs.user_genre(dense, g)
        out.append((dense, emb, genre, last, now, feature_defs.context_vector(now), items))
    return out


def _rank_p99_ms(b: LoadedBundle, rounds: int) -> float:
    inputs = _golden_inputs(b)
    if not inputs:
        raise GateRefused("latency", "golden.json has no requests to time")
    times = []
    for _ in range(rounds):
        for args in inputs:
            t0 = time.perf_counter()
            b.score(b.assembler.assemble(*args))
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(times, 99))


def _coverage(b: LoadedBundle, config: GateConfig) -> str:
    for name, arr in (("user_dense", b.user_dense), ("user_emb", b.user_emb), ("item_emb", b.item_emb)):
        if not np.isfinite(arr).all():
            raise GateRefused("coverage", f"{name} has non-finite values")
    for args in _golden_inputs(b):
        if not np.isfinite(b.assembler.assemble(*args)).all():
            raise GateRefused("coverage", "a golden request assembles non-finite features")
    covered = float(np.mean(np.linalg.norm(b.item_emb, axis=1) > 0)) if b.n_items else 0.0
    if covered < config.min_item_coverage:
        raise GateRefused("coverage", f"{covered:.1%} of items have an embedding, need {config.min_item_coverage:.0%}")
    return f"{covered:.1%} of {b.n_items} items have an embedding"
