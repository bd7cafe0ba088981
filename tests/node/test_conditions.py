"""The machine conditions every benchmark prints, including the kernel's memory settings."""

from __future__ import annotations

from pathlib import Path

from node.conditions import damon, machine, memory_settings


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


def test_damon_lists_each_monitor_with_its_operations_and_actions(tmp_path: Path) -> None:
    def put(rel: str, text: str) -> None:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text + "\n")

    put("nr_kdamonds", "2")
    put("0/state", "on")
    put("0/contexts/0/operations", "paddr")
    put("0/contexts/0/schemes/0/action", "pageout")
    put("0/contexts/0/schemes/1/action", "lru_prio")
    put("1/state", "off")
    (tmp_path / "1" / "contexts").mkdir()
    assert damon(tmp_path) == [
        {"state": "on", "operations": ["paddr"], "actions": ["pageout", "lru_prio"]},
        {"state": "off", "operations": [], "actions": []},
    ]
    assert damon(tmp_path / "absent") is None


def test_machine_says_whether_the_host_runs_damon() -> None:
    found = machine()["damon"]
    assert found == damon()
    assert found is None or all(k["state"] in {"on", "off", None} for k in found)
