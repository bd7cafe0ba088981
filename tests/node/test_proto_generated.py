"""The committed generated code is exactly what proto/ generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from node.gen.edgerank.v1 import ranker_pb2
from node.types import ServedBy, Source

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pipeline_enums_match_the_wire_enums() -> None:
    for member in Source:
        assert ranker_pb2.Source.Value(f"SOURCE_{member.name}") == member.value
    for rung in ServedBy:
        assert ranker_pb2.ServedBy.Value(f"SERVED_BY_{rung.name}") == rung.value
    assert len(ranker_pb2.Source.keys()) == len(Source) + 1
    assert len(ranker_pb2.ServedBy.keys()) == len(ServedBy) + 1
