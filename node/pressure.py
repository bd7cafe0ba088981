"""How long tasks stalled on memory and on the CPU over a window of a benchmark, from the kernel's
pressure-stall information (PSI, ``/proc/pressure/*``, Linux 4.20+).

The ``some`` line's ``total`` counts the microseconds during which at least one task of the machine was
stalled: waiting for memory (reclaim, compaction, a page under migration, a refault) or, for ``cpu``,
runnable but not running. A window whose tail is a memory stall of the whole machine says more about the
machine than about the code under test (BENCHMARKS.md, replication, session (11)).

Beside them, ``steal``: the ms the hypervisor gave this virtual machine's CPUs to another guest while they
had work (``/proc/stat``, summed over the CPUs, in clock ticks of 10 ms): a stall no process here caused.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from pathlib import Path

PRESSURE = Path("/proc/pressure")
STAT = Path("/proc/stat")
RESOURCES = ("memory", "cpu")


def read_steal_ms(stat: Path = STAT) -> float | None:
    """The machine's CPU time stolen by the hypervisor since boot, ms over all CPUs; None where not kept."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    return int(fields[8]) * 1e3 / os.sysconf("SC_CLK_TCK")


def read_totals(root: Path = PRESSURE, stat: Path = STAT) -> dict[str, float] | None:
    """Each resource's ``some`` total in ms, and ``steal`` where ``stat`` has it; None where the kernel keeps
    no PSI (or not for every resource)."""
    out: dict[str, float] = {}
    for resource in RESOURCES:
        try:
            text = (root / resource).read_text()
        except OSError:  # no PSI: not Linux, an old kernel, or psi=0 on the kernel's command line
            return None
        for line in text.splitlines():
            kind, *fields = line.split()
            if kind == "some":
                values = dict(f.split("=", 1) for f in fields)
                out[resource] = int(values["total"]) / 1e3
    if len(out) != len(RESOURCES):
        return None
    steal = read_steal_ms(stat)
    if steal is not None:
        out["steal"] = steal
    return out


class PressureLog:
    """The totals sampled every ``interval_s`` by a thread, for :meth:`stall_ms` over any window between
    :meth:`start` and :meth:`stop`."""

    def __init__(self, interval_s: float = 0.05, root: Path = PRESSURE, stat: Path = STAT):
        self.interval_s, self.root, self.stat = interval_s, root, stat
        self._times: list[float] = []
        self._totals: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PressureLog:
        if read_totals(self.root, self.stat) is not None:
            self._sample()
            self._thread = threading.Thread(target=self._run, name="pressure-log", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        totals = read_totals(self.root, self.stat)
        if totals is not None:
            self._totals.append(totals)
            self._times.append(time.monotonic())  # appended last: a reader sees whole samples only

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def stop(self) -> None:
        """End the sampling with a last sample; again, nothing (the bench stops it before its report and
        in its ``finally``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._sample()

    def stall_ms(self, t0: float, t1: float) -> dict[str, float] | None:
        """Stall ms per resource (and ``steal``, where kept) from the last sample at or before ``t0`` to the
        first at or after ``t1`` (monotonic times; the window widened by up to one interval each side); None
        without samples around it."""
        times = self._times[:]
        i, j = bisect.bisect_right(times, t0) - 1, bisect.bisect_left(times, t1)
        if i < 0 or j >= len(times):
            return None
        a, b = self._totals[i], self._totals[j]
        return {r: round(b[r] - a[r], 1) for r in a if r in b}
