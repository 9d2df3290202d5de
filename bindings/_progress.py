"""A minimal progress bar on stderr for long initializations (bytes done of the total)."""

from __future__ import annotations

import sys
import time

# Below this many bytes an initialization is too short to be worth a bar.
THRESHOLD_BYTES = 256 * 2**20


def wanted(total_bytes: int) -> bool:
    """The default for ``progress=None``: a bar when stderr is a terminal and the work is long."""
    return sys.stderr.isatty() and total_bytes > THRESHOLD_BYTES


class Bar:
    """A minimal progress bar on stderr (bytes initialized of the total)."""

    def __init__(self, total: int):
        self.total, self.done, self.start = max(total, 1), 0, time.perf_counter()
        self._draw()

    def advance(self, amount: int):
        self.done += amount
        self._draw()

    def _draw(self):
        width = 30
        filled = width * self.done // self.total
        rate = self.done / max(time.perf_counter() - self.start, 1e-9) / 2**20
        sys.stderr.write(f"\rwarpinit: [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done / 2**20:,.0f}/{self.total / 2**20:,.0f} MiB {rate:,.0f} MiB/s")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()
