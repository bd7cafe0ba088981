"""The machine conditions every benchmark prints, including the kernel's memory settings."""

from __future__ import annotations

from pathlib import Path

from node.conditions import machine, memory_settings


def test_memory_settings_read_the_chosen_value_or_none(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("1\n")
    (tmp_path / "choice").write_text("always [madvise] never\n")
    got = memory_settings({"plain": tmp_path / "plain", "choice": tmp_path / "choice", "gone": tmp_path / "nope"})
    assert got == {"plain": "1", "choice": "madvise", "gone": None}


def test_machine_names_the_memory_settings() -> None:
    m = machine(extra=1)
    assert set(m["memory"]) == {"compact_unevictable_allowed", "transparent_hugepage", "transparent_hugepage_defrag"}
    assert m["extra"] == 1 and m["cpus"] >= 1
    if Path("/proc/sys/vm/compact_unevictable_allowed").exists():
        assert m["memory"]["compact_unevictable_allowed"] in {"0", "1"}
