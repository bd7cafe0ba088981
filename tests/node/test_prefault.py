"""A bundle's mapped files are faulted in before it serves (``node.prefault``)."""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hotpath
from node import prefault as prefault_module
from node.prefault import mappings, prefault, release

SIZE = 4 << 20  # bytes of array data


def smaps_kib(path: Path, field: str = "Rss") -> int:
    """KiB of ``field`` (Rss, Locked) over this process's mappings of ``path`` (``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3]:  # a mapping's first line
            inside = len(head) == 6 and head[5] == str(path.resolve())
        elif inside and line.startswith(field + ":"):
            total += int(line.split()[1])
    return total


def resident_kib(path: Path) -> int:
    return smaps_kib(path, "Rss")


@pytest.mark.skipif(sys.platform != "linux", reason="MADV_POPULATE_READ and /proc are Linux's")
def test_prefault_fills_the_mappings_of_the_directory_only(tmp_path: Path) -> None:
    bundle, other = tmp_path / "bundle", tmp_path / "other"
    bundle.mkdir()
    other.mkdir()
    for d in (bundle, other):
        np.save(d / "a.npy", np.ones(SIZE // 4, dtype=np.float32))
    ours = np.load(bundle / "a.npy", mmap_mode="r")
    theirs = np.load(other / "a.npy", mmap_mode="r")
    assert [p for _, _, p in mappings(bundle)] == [str((bundle / "a.npy").resolve())]
    # Nothing read through the maps yet (np.load reads the header with a plain read).
    assert resident_kib(bundle / "a.npy") < SIZE // 1024 // 2
    covered = prefault(bundle)
    if covered == 0:
        pytest.skip("the kernel has no MADV_POPULATE_READ (Linux < 5.14)")
    assert covered >= SIZE
    assert resident_kib(bundle / "a.npy") >= SIZE // 1024
    assert resident_kib(other / "a.npy") < SIZE // 1024 // 2  # other directories are left alone
    assert float(ours[-1]) == float(theirs[-1]) == 1.0


def test_no_mappings_is_nothing_to_do(tmp_path: Path) -> None:
    assert mappings(tmp_path) == [] and prefault(tmp_path) == 0


def warnings_for_unmapped_regions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, lock: bool
) -> list[str]:
    """``prefault``'s warnings when the core reports two mappings it could neither lock nor fault in (ENOMEM)."""
    enomem = errno.ENOMEM
    fake = [(f"{tmp_path}/a.npy", 0x1000, enomem if lock else 0, enomem), (f"{tmp_path}/b.npy", 0x1000, 0, enomem)]
    if lock:
        fake[1] = (fake[1][0], 0x1000, enomem, enomem)
    monkeypatch.setattr(hotpath, "prefault_mappings", lambda directory, lock: fake)
    with caplog.at_level("WARNING", logger="node.prefault"):
        assert prefault(tmp_path, lock=lock) == 0
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_mapping_that_cannot_be_prefaulted_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    warnings = warnings_for_unmapped_regions(tmp_path, monkeypatch, caplog, lock=False)
    assert len(warnings) == 1 and "2 of 2 mappings" in warnings[0], warnings


@pytest.mark.skipif(sys.platform != "linux", reason="mlock and /proc/self/smaps are Linux's")
def test_lock_keeps_the_mappings_resident_and_locked(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    np.save(bundle / "a.npy", np.ones(SIZE // 4, dtype=np.float32))  # 4 MiB: under the usual 8 MiB RLIMIT_MEMLOCK
    ours = np.load(bundle / "a.npy", mmap_mode="r")
    assert smaps_kib(bundle / "a.npy", "Locked") == 0
    assert prefault(bundle, lock=True) >= SIZE
    assert smaps_kib(bundle / "a.npy", "Locked") >= SIZE // 1024
    assert resident_kib(bundle / "a.npy") >= SIZE // 1024
    assert float(ours[0]) == 1.0


_LOCK_CODE = """
import json, sys
from pathlib import Path
import numpy as np
import hotpath
from node.prefault import lock_code
from tests.node.test_prefault import smaps_kib
data = np.load(sys.argv[1], mmap_mode="r")
native = Path(hotpath._native.__file__)
before = smaps_kib(native, "Locked")
locked = lock_code()
print(json.dumps({"locked": locked, "before": before, "native": smaps_kib(native, "Locked"),
                  "native_size": smaps_kib(native, "Size"), "data": smaps_kib(Path(sys.argv[1]), "Locked")}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="mlock and /proc/self/smaps are Linux's")
def test_lock_code_locks_the_libraries_but_not_the_data_files(tmp_path: Path) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < 1 << 30:
        pytest.skip(f"RLIMIT_MEMLOCK is {soft} bytes: too little to lock an interpreter's libraries")
    np.save(tmp_path / "a.npy", np.ones(1024, dtype=np.float32))
    # In a process of its own: the lock lasts as long as the process.
    run = subprocess.run(
        [sys.executable, "-c", _LOCK_CODE, str(tmp_path / "a.npy")],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    out = json.loads(run.stdout)
    assert out["before"] == 0
    # Every mapping of the extension module that is not writable: its text and read-only data.
    assert 0 < out["native"] <= out["native_size"]
    assert out["locked"] >= out["native"] * 1024
    assert out["data"] == 0  # a data file is mapped without exec: not code


@pytest.mark.skipif(sys.platform != "linux", reason="mlock and /proc/self/smaps are Linux's")
def test_release_unlocks_and_drops_the_pages_but_not_the_data(tmp_path: Path) -> None:
    bundle, other = tmp_path / "bundle", tmp_path / "other"
    for d in (bundle, other):
        d.mkdir()
        np.save(d / "a.npy", np.arange(SIZE // 4, dtype=np.float32))
    ours = np.load(bundle / "a.npy", mmap_mode="r")
    theirs = np.load(other / "a.npy", mmap_mode="r")
    for d in (bundle, other):
        assert prefault(d, lock=True) >= SIZE
    assert release(bundle) >= SIZE
    assert smaps_kib(bundle / "a.npy", "Locked") == 0
    assert resident_kib(bundle / "a.npy") < SIZE // 1024 // 2
    # The other directory's mapping is untouched, and the released one still reads its file.
    assert smaps_kib(other / "a.npy", "Locked") >= SIZE // 1024
    assert float(ours[-1]) == float(theirs[-1]) == SIZE // 4 - 1
    assert release(tmp_path / "nothing-mapped") == 0


def test_a_mapping_that_cannot_be_locked_is_faulted_in_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    warnings = warnings_for_unmapped_regions(tmp_path, monkeypatch, caplog, lock=True)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("cannot lock 2 of 2 mappings") and "evicted under memory pressure" in warnings[0]
    assert warnings[1].startswith("cannot prefault 2 of 2 mappings")


def test_compaction_of_locked_pages_is_warned_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    setting = tmp_path / "compact_unevictable_allowed"
    prefault_module._compaction_warned.clear()
    setting.write_text("0\n")
    with caplog.at_level(logging.WARNING, logger="node.prefault"):
        assert prefault_module.warn_if_compaction_moves_locked_pages(setting) is False
        assert caplog.records == []
        setting.write_text("1\n")
        assert prefault_module.warn_if_compaction_moves_locked_pages(setting) is True
        assert prefault_module.warn_if_compaction_moves_locked_pages(setting) is True
    assert len(caplog.records) == 1 and "vm.compact_unevictable_allowed=0" in caplog.records[0].getMessage()
    assert prefault_module.warn_if_compaction_moves_locked_pages(tmp_path / "missing") is False
