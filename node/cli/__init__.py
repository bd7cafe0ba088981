"""``edgerank``: one command line for the node and the trainer.

Each command lives in its own module exposing ``register(subparsers)``; the
module's parser sets ``func`` to a callable taking the parsed args and
returning an exit code.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from node.cli import bench, demo, features, query, serve, synth
from node.errors import EdgerankError
from node.settings import SettingsError
from replicator import launcher
from replicator.cli import keygen, promote, prune, publish, replicate, status
from replicator.errors import ReplicatorError
from trainer.bundle import BundleError
from trainer.cli import eval as trainer_eval
from trainer.cli import train as trainer_train
from trainer.errors import DataError, GateFailed

COMMANDS = (
    serve,
    features,
    query,
    demo,
    trainer_train,
    trainer_eval,
    bench,
    synth,
    keygen,
    publish,
    prune,
    promote,
    status,
    replicate,
    launcher,
)

EXIT_ERROR = 2
EXIT_BUG = 1
EXPECTED_ERRORS = (
    EdgerankError,
    BundleError,
    SettingsError,
    DataError,
    GateFailed,
    OSError,
    ReplicatorError,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgerank",
        description="Real-time recommendation serving for edge regions.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks instead of one-line errors",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM acts as Ctrl-C while a command runs: a KeyboardInterrupt in the main thread unwinds through the
    command's cleanup (the servers, nodes and load generators a bench or ``up`` started, its temporary
    directories), and the exit code is 130. Without it, SIGTERM's default action ended the process on the
    spot and left its children running. Commands that serve install their own graceful stop over it."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with sigterm_interrupts():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except EXPECTED_ERRORS as e:
        if args.debug:
            raise
        print(f"edgerank: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:
        if args.debug:
            raise
        print(
            f"edgerank: error: {type(e).__name__}: {e} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG
