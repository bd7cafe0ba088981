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


def machine(**extra: Any) -> dict[str, Any]:
    """CPU model and count, the load average now, Python, the platform and the kernel's memory settings;
    ``extra`` fields appended."""
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_avg_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory": memory_settings(),
        **extra,
    }
