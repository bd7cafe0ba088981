"""Pressure-stall totals over a benchmark's windows (node/pressure.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from node.pressure import PRESSURE, PressureLog, read_steal_ms, read_totals


def _write(root: Path, memory_us: int, cpu_us: int, steal_ticks: int | None = None) -> None:
    if steal_ticks is not None:  # /proc/stat's first line: user nice system idle iowait irq softirq steal ...
        (root / "stat").write_text(f"cpu  5337 0 1762 13168 297 0 24 {steal_ticks} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
    for name, total in (("memory", memory_us), ("cpu", cpu_us)):
        (root / name).write_text(
            f"some avg10=0.00 avg60=0.00 avg300=0.00 total={total}\n"
            f"full avg10=0.00 avg60=0.00 avg300=0.00 total={total // 2}\n"
        )


def test_the_some_totals_in_ms(tmp_path: Path) -> None:
    _write(tmp_path, 1_500, 2_000_000)
    assert read_totals(tmp_path, tmp_path / "stat") == {"memory": 1.5, "cpu": 2000.0}  # no /proc/stat: no steal
    _write(tmp_path, 1_500, 2_000_000, steal_ticks=13)
    tick_ms = 1e3 / os.sysconf("SC_CLK_TCK")
    assert read_totals(tmp_path, tmp_path / "stat") == {"memory": 1.5, "cpu": 2000.0, "steal": 13 * tick_ms}
    (tmp_path / "stat").write_text("intr 1 2 3\n")
    assert read_steal_ms(tmp_path / "stat") is None  # not the cpu line


def test_none_without_pressure_files(tmp_path: Path) -> None:
    assert read_totals(tmp_path / "missing") is None
    (tmp_path / "memory").write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")
    assert read_totals(tmp_path) is None  # no cpu file
    log = PressureLog(root=tmp_path / "missing").start()
    log.stop()
    assert log.stall_ms(0.0, time.monotonic()) is None


def test_a_window_counts_the_samples_around_it(tmp_path: Path) -> None:
    _write(tmp_path, 1_000, 1_000, steal_ticks=0)
    log = PressureLog(interval_s=0.01, root=tmp_path, stat=tmp_path / "stat").start()
    time.sleep(0.05)
    t0 = time.monotonic()
    _write(tmp_path, 251_000, 11_000, steal_ticks=3)  # 250 ms of memory stalls, 10 ms of CPU waits, 3 ticks stolen
    time.sleep(0.05)
    t1 = time.monotonic()
    time.sleep(0.05)
    log.stop()
    samples = len(log._times)
    log.stop()  # again: no more samples
    assert len(log._times) == samples
    tick_ms = 1e3 / os.sysconf("SC_CLK_TCK")
    assert log.stall_ms(t0, t1) == {"memory": 250.0, "cpu": 10.0, "steal": round(3 * tick_ms, 1)}
    assert log.stall_ms(t1 + 0.001, t1 + 0.02) == {"memory": 0.0, "cpu": 0.0, "steal": 0.0}
    assert log.stall_ms(t0 - 3600.0, t1) is None  # before the first sample
    assert log.stall_ms(t0, time.monotonic() + 3600.0) is None  # after the last


@pytest.mark.skipif(read_totals() is None, reason="this kernel keeps no pressure-stall information")
def test_the_machines_own_totals_only_grow() -> None:
    log = PressureLog(interval_s=0.01).start()
    t0 = time.monotonic()
    time.sleep(0.05)
    t1 = time.monotonic()
    time.sleep(0.02)
    log.stop()
    stall = log.stall_ms(t0, t1)
    assert stall is not None and set(stall) == {"memory", "cpu", "steal"} and min(stall.values()) >= 0.0, (
        stall,
        PRESSURE,
    )
