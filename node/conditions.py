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


def machine(**extra: Any) -> dict[str, Any]:
    """CPU model and count, the load average now, Python and the platform; ``extra`` fields appended."""
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_avg_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **extra,
    }
