"""The `edgerank` command line, run as a subprocess against real nodes."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.server import Node

EDGERANK = str(Path(sys.executable).parent / "edgerank")
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGERANK, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_query_prints_header_and_table(node: Node, bundle_root: Path) -> None:
    result = run(
        "query",
        "--target",
        node.target,
        "--user",
        "u001",
        "-n",
        "5",
        "--bundle-dir",
        str(bundle_root),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    version = node.holder.snapshot().version
    assert re.match(
        rf"user u001  served_by FULL  bundle {version}  model linear-i-0  arm champion  [\d.]+ ms$",
        lines[0],
    )
    assert lines[1].split() == ["rank", "item_id", "title", "score", "source"]
    rows = lines[2:]
    assert len(rows) == 5
    first = rows[0].split()
    assert first[0] == "1" and first[2] == "Title" and first[1] == f"i{first[3]}"
    assert first[-1] in {"ANN", "SESSION", "TRENDING", "FRESH"}


def test_query_json(node: Node) -> None:
    result = run("query", "--target", node.target, "--user", "nobody", "-n", "3", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["served_by"] == "SERVED_BY_POPULARITY" and len(doc["items"]) == 3


def test_query_server_error_is_one_line(node: Node) -> None:
    result = run("query", "--target", node.target, "--user", "u001", "-n", "0")
    assert result.returncode == 2
    assert result.stderr == "edgerank: error: INVALID_ARGUMENT: num_results: must be in [1, 1000], got 0\n"
    assert result.stdout == ""


def test_query_unreachable_node_is_one_line() -> None:
    result = run("query", "--target", "127.0.0.1:1", "--user", "u001", "--timeout", "2")
    assert result.returncode == 2
    assert result.stderr.startswith("edgerank: error: UNAVAILABLE: ") and result.stderr.count("\n") == 1


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    result = run("serve", "--bundle-dir", str(tmp_path), env={"EDGERANK_PORT": "abc"})
    assert result.returncode == 2
    assert result.stderr == "edgerank: error: EDGERANK_PORT: not an integer: 'abc'\n"


def test_missing_bundle_is_one_line(tmp_path: Path) -> None:
    result = run("serve", "--bundle-dir", str(tmp_path), "--port", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"edgerank: error: no bundle at {tmp_path} (no manifest.json, no LATEST)"


@pytest.fixture
def served(bundle_root: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    stderr = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [EDGERANK, "serve", "--bundle-dir", str(bundle_root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=60), (tmp_path / "serve.log").read_text()
        line = proc.stdout.readline()
        match = re.match(r"edgerank: serving \S+ on (\S+:\d+)$", line.strip())
        assert match, line + (tmp_path / "serve.log").read_text()
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_gracefully_on_signal(served: tuple[subprocess.Popen[str], str], sig: signal.Signals) -> None:
    proc, target = served
    result = run("query", "--target", target, "--user", "u002", "-n", "3")
    assert result.returncode == 0, result.stderr
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 0
