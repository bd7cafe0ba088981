"""SIGTERM to an ``edgerank`` command unwinds through its cleanup, as Ctrl-C does (exit code 130)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from node import cli

# A stand-in command, registered beside the real ones, whose cleanup leaves a mark.
COMMAND = """
import sys, time
from pathlib import Path
from node import cli

class Waiting:
    @staticmethod
    def register(subparsers):
        subparsers.add_parser("wait-here").set_defaults(func=run)

def run(args):
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        Path(sys.argv[1]).write_text("cleaned up")

cli.COMMANDS = (*cli.COMMANDS, Waiting)
sys.exit(cli.main(["wait-here"]))
"""


def test_sigterm_runs_the_commands_cleanup_and_exits_130(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    with subprocess.Popen([sys.executable, "-c", COMMAND, str(mark)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
    assert mark.read_text() == "cleaned up"


def test_the_previous_handler_is_back_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    class Probe:
        @staticmethod
        def register(subparsers: object) -> None:
            subparsers.add_parser("probe").set_defaults(func=lambda args: seen.append(signal.getsignal(signal.SIGTERM)))  # type: ignore[attr-defined]

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, Probe))
    assert cli.main(["probe"]) == 0
    assert seen and seen[0] is not before  # while the command ran, SIGTERM interrupted it
    assert signal.getsignal(signal.SIGTERM) is before
