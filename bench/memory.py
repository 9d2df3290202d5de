"""The peak memory of a step, from Linux's /proc: reset the high-water mark, run, read it back.

    reset = reset_peak(); before = status("VmRSS"); step(); added = status("VmHWM") - before

Elsewhere ``status`` reads 0 and ``reset_peak`` returns False (the caller reports the peak as unknown).
"""

from __future__ import annotations


def status(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM, ...), in bytes (0 where
    there is none)."""
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak() -> bool:
    """Reset VmHWM to the current resident size (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False
