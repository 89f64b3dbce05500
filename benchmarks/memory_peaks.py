"""The peak memory of one step of a benchmark, measured in the (fresh) process that runs it.

Imported by the benchmark scripts beside it (run as ``python benchmarks/<name>.py``, so this folder
is on ``sys.path``). Linux only: the figures are read from ``/proc/self/status``.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from types import TracebackType


def rss_kib(field: str) -> int:
    """One memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ``RssAnon``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class MemoryPeaks:
    """``with MemoryPeaks() as peaks:`` around the step; ``peaks.figures()`` after it.

    ``VmHWM`` counts memory-mapped weight pages too (file-backed, reclaimable), so a sampler thread
    also records the peak of anonymous memory (``RssAnon``), which is what the process allocated.
    Import everything the step needs before entering, so that imports are not counted.
    """

    def __init__(self, interval_s: float = 0.002) -> None:
        self._interval_s = interval_s
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self.before_kib = 0
        self.anon_before_kib = 0
        self.anon_peak_kib = 0

    def __enter__(self) -> MemoryPeaks:
        gc.collect()
        self.before_kib = rss_kib("VmRSS")
        self.anon_before_kib = rss_kib("RssAnon")
        self.anon_peak_kib = self.anon_before_kib
        self._sampler.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._sampler.join()
        self.anon_peak_kib = max(self.anon_peak_kib, rss_kib("RssAnon"))

    def _sample(self) -> None:
        while not self._done.is_set():
            self.anon_peak_kib = max(self.anon_peak_kib, rss_kib("RssAnon"))
            time.sleep(self._interval_s)

    def figures(self) -> dict[str, int]:
        """RSS before and its high-water mark; anonymous memory before and its sampled peak."""
        return {
            "before_kib": self.before_kib,
            "peak_kib": rss_kib("VmHWM"),
            "anon_before_kib": self.anon_before_kib,
            "anon_peak_kib": self.anon_peak_kib,
        }
