"""Printing a RankResponse for people (a header and a table) or as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

import numpy as np
from google.protobuf import json_format

from node.gen.edgerank.v1 import ranker_pb2
from trainer import bundle as bundle_format

TITLE_WIDTH = 48


def load_titles(path: Path) -> dict[str, str]:
    """item id -> title from a bundle (dir or root) on local disk."""
    bundle_dir = bundle_format.resolve(Path(path))
    ids = np.load(bundle_dir / "item_ids.npy", allow_pickle=False).tolist()
    titles = json.loads((bundle_dir / "item_titles.json").read_text())
    return {str(i): str(t) for i, t in zip(ids, titles, strict=False)}


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_response(
    user_id: str,
    response: ranker_pb2.RankResponse,
    titles: dict[str, str] | None,
    out: TextIO,
) -> None:
    served_by = ranker_pb2.ServedBy.Name(response.served_by).removeprefix("SERVED_BY_")
    out.write(
        f"user {user_id}  served_by {served_by}  bundle {response.bundle_version}  "
        f"model {response.model_version}  arm {response.experiment_arm}  {response.total_ms:.2f} ms\n"
    )
    id_width = max([len("item_id"), *(len(i.item_id) for i in response.items)])
    header = f"{'rank':>4}  {'item_id':<{id_width}}  {'title':<{TITLE_WIDTH}}  {'score':>8}  source"
    out.write(header + "\n")
    for item in response.items:
        title = _short((titles or {}).get(item.item_id, ""), TITLE_WIDTH)
        source = ranker_pb2.Source.Name(item.source).removeprefix("SOURCE_")
        out.write(f"{item.rank:>4}  {item.item_id:<{id_width}}  {title:<{TITLE_WIDTH}}  {item.score:>8.4f}  {source}\n")


def response_json(response: ranker_pb2.RankResponse) -> str:
    return json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True), indent=2)
