"""The facts about the machine and the software that a benchmark figure needs next to it.

Nothing here imports a framework: versions come from the installed distributions' metadata, so
collecting the facts neither slows the run nor changes the threads a library starts.
"""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata

# The distributions whose versions matter to a figure (the first installed name of each group).
LIBRARIES = {
    "warpinit": ("warpinit",),
    "numpy": ("numpy",),
    "numba": ("numba",),
    "numba-cuda": ("numba-cuda",),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy"),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "keras": ("keras",),
    "torch": ("torch",),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
}


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo, else the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    """Physical memory in bytes, where the OS reports it."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Names of the CUDA GPUs CuPy sees, or [] (no CuPy, no driver, or the simulator)."""
    from warpinit import _devices

    if not _devices.cuda_usable():
        return []
    import cupy

    names = []
    for index in range(cupy.cuda.runtime.getDeviceCount()):
        name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
        names.append(name.decode() if isinstance(name, bytes) else str(name))
    return names


def versions() -> dict[str, str]:
    """Installed versions of warpinit, its engine and its peers (absent ones are left out)."""
    found = {}
    for label, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                found[label] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


# Environment variables that change the libraries' code paths or threads (OPENBLAS_CORETYPE, for one,
# fixes OpenBLAS's kernels whatever the CPU).
ENVIRONMENT_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "NUMBA_", "XLA_", "TF_NUM_", "TF_ENABLE_")


def environment() -> dict[str, str]:
    """The settings of the environment that a figure depends on (``ENVIRONMENT_PREFIXES``)."""
    return {name: value for name, value in sorted(os.environ.items()) if name.startswith(ENVIRONMENT_PREFIXES)}


def facts() -> dict:
    """Everything above, with the date (UTC), the platform and ``environment()``, as one JSON-ready dict."""
    memory = memory_bytes()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "memory_gib": round(memory / 2**30, 1) if memory else None,
        "gpus": gpu_names(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
        "environment": environment(),
    }


def describe(machine: dict) -> str:
    """One line naming the machine, for the table's header and the plot's title."""
    gpus = ", ".join(machine["gpus"]) or "no GPU"
    memory = f", {machine['memory_gib']:g} GiB" if machine.get("memory_gib") else ""
    return f"{machine['cpu']} ({machine['cores']} cores{memory}), {gpus}"
