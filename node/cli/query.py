"""``edgerank query``: ask a node for a ranked list and print it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import grpc

from node.cli.render import load_titles, print_response, response_json
from node.errors import RemoteError
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("query", help="rank for one user on a running node")
    parser.add_argument("--target", default="127.0.0.1:50051", help="node address HOST:PORT")
    parser.add_argument("--user", required=True, help="user id")
    parser.add_argument("--surface", default="home", help="surface (home, trending, new, ...)")
    parser.add_argument("-n", "--num-results", type=int, default=10, help="number of items")
    parser.add_argument(
        "--pool",
        type=int,
        default=0,
        help="candidate pool size (0: the node's default)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="ITEM_ID",
        help="item id to exclude",
    )
    parser.add_argument("--request-id", default="", help="request id (seeds exploration)")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    parser.add_argument("--bundle-dir", default=None, help="local bundle to read item titles from")
    parser.add_argument("--json", action="store_true", help="print the response as JSON")
    parser.set_defaults(func=run)


def rank(target: str, request: ranker_pb2.RankRequest, timeout: float = 5.0) -> ranker_pb2.RankResponse:
    """One Rank call; a failed call becomes RemoteError("CODE: details")."""
    with grpc.insecure_channel(target) as channel:
        try:
            response: ranker_pb2.RankResponse = ranker_pb2_grpc.RankerStub(channel).Rank(request, timeout=timeout)
            return response
        except grpc.RpcError as e:
            raise RemoteError(f"{e.code().name}: {e.details()}") from None


def run(args: argparse.Namespace) -> int:
    request = ranker_pb2.RankRequest(
        user_id=args.user,
        surface=args.surface,
        num_results=args.num_results,
        candidate_pool_size=args.pool,
        exclude_item_ids=args.exclude,
        request_id=args.request_id,
        context=ranker_pb2.Context(timestamp_ms=int(time.time() * 1000)),
    )
    response = rank(args.target, request, args.timeout)
    if args.json:
        print(response_json(response))
    else:
        titles = load_titles(args.bundle_dir) if args.bundle_dir else None
        print_response(args.user, response, titles, sys.stdout)
    return 0
