"""The machine a benchmark ran on, in the same fields in every benchmark's JSON (under ``"machine"``).

The machines are shared and noisy: a figure without the load average it was measured at says little.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # no /proc (not Linux): the platform's own name below
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]


# Kernel memory settings that moved the tail of a bundle swap (BENCHMARKS.md, replication, session (8)):
# compaction may migrate locked pages unless compact_unevictable_allowed is 0; transparent huge pages and
# their defragmentation decide how often allocations compact.
MEMORY_SETTINGS = {
    "compact_unevictable_allowed": Path("/proc/sys/vm/compact_unevictable_allowed"),
    "transparent_hugepage": Path("/sys/kernel/mm/transparent_hugepage/enabled"),
    "transparent_hugepage_defrag": Path("/sys/kernel/mm/transparent_hugepage/defrag"),
}


def memory_settings(paths: dict[str, Path] = MEMORY_SETTINGS) -> dict[str, str | None]:
    """Each setting's value (the bracketed choice of a choice list), None where the file is missing."""
    out: dict[str, str | None] = {}
    for name, path in paths.items():
        try:
            text = path.read_text().strip()
        except OSError:  # not Linux, or no such knob on this kernel
            out[name] = None
            continue
        chosen = [w[1:-1] for w in text.split() if w.startswith("[") and w.endswith("]")]
        out[name] = chosen[0] if chosen else text
    return out


# The kernel's DAMON (data access monitoring), where the host runs it: its thread takes CPU in bursts, and
# with it running the swaps of `bench replication` held stalls it did not hold paused (BENCHMARKS.md,
# replication, session (11)).
DAMON = Path("/sys/kernel/mm/damon/admin/kdamonds")


def damon(root: Path = DAMON) -> list[dict[str, Any]] | None:
    """Each DAMON monitor of the host: its state, what it monitors (``paddr``: all physical memory) and
    its schemes' actions (``pageout``, ...); None where the kernel has no DAMON sysfs interface."""
    if not root.is_dir():
        return None

    def read(path: Path) -> str | None:
        try:
            return path.read_text().strip()
        except OSError:  # a monitor torn down while read
            return None

    out = []
    for kdamond in sorted((d for d in root.iterdir() if d.name.isdigit()), key=lambda d: int(d.name)):
        contexts = sorted((d for d in (kdamond / "contexts").glob("[0-9]*") if d.is_dir()), key=lambda d: int(d.name))
        out.append(
            {
                "state": read(kdamond / "state"),
                "operations": [read(c / "operations") for c in contexts],
                "actions": [read(a) for c in contexts for a in sorted((c / "schemes").glob("[0-9]*/action"))],
            }
        )
    return out


def machine(**extra: Any) -> dict[str, Any]:
    """CPU model and count, the load average now, Python, the platform, the kernel's memory settings and
    DAMON monitors; ``extra`` fields appended."""
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_avg_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory": memory_settings(),
        "damon": damon(),
        **extra,
    }
