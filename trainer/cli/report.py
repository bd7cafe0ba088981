"""A plain-text table of evaluation metrics."""

from __future__ import annotations

from typing import Any

COLUMNS = ("ndcg@10", "recall@10", "recall@100", "coverage@10", "auc")


def metrics_table(metrics: dict[str, Any]) -> str:
    lines = [f"{'group':6} {'model':11} {'users':>5} " + " ".join(f"{c:>11}" for c in COLUMNS) + "  ndcg@10 95% CI"]
    for group in ("warm", "cold"):
        block = metrics.get(group, {})
        for model, vals in block.items():
            if not isinstance(vals, dict):
                continue
            cells = []
            for c in COLUMNS:
                v = vals.get(c)
                cells.append(f"{v:11.4f}" if isinstance(v, float) else f"{'-':>11}")
            lo, hi = vals.get("ndcg@10_ci95", [float("nan")] * 2)
            lines.append(f"{group:6} {model:11} {block['users']:5d} " + " ".join(cells) + f"  [{lo:.4f}, {hi:.4f}]")
    return "\n".join(lines)
