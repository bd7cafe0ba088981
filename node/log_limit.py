"""Warnings that would repeat on every request, logged once per interval with a count.

Under a fault that hits every request (an index that is down, a feature
store that raises) a warning per request floods the log and costs each
request the formatting of a traceback. :class:`LogLimiter` logs the first
occurrence of each kind at once, with its traceback, then at most one line
per ``interval_s``, carrying how many occurrences it stands for
(``count``, also in the message) and the last error. The fields go into
the JSON line (:mod:`node.logs`) as ``fields``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class LogLimiter:
    def __init__(self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def warning(self, kind: str, message: str, error: BaseException | None = None) -> None:
        """Count one occurrence of ``kind``; log a line when the interval since the last line has passed."""
        now = self._clock()
        with self._lock:
            count = self._counts.get(kind, 0) + 1
            last = self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._counts[kind] = count
                return
            self._counts[kind] = 0
            self._last[kind] = now
        since = "" if last is None else f" in the last {now - last:.1f} s"
        fields: dict[str, object] = {"kind": kind, "count": count}
        if last is not None:
            fields["interval_s"] = round(now - last, 3)
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
        self.logger.warning(
            "%s (%d time%s%s)",
            message,
            count,
            "" if count == 1 else "s",
            since,
            # A lone occurrence gets its traceback; a line standing for many carries the last error's text.
            exc_info=error if count == 1 else None,
            extra={"fields": fields},
        )
