"""Numba's threading layer, chosen on purpose before the first parallel kernel runs.

Numba picks a threading layer at the first parallel call, for the whole process. Its default on a pip
install is GNU OpenMP, which aborts a child process that forks after a parallel call and then runs
one ("fork() called from a process already using GNU OpenMP") - exactly what a DataLoader worker or a
multiprocessing pool does. warpinit therefore asks for:

1. whatever the user chose through ``NUMBA_THREADING_LAYER`` (never overridden);
2. otherwise TBB (the ``tbb`` dependency): safe under both threads and fork. Its pip wheel puts
   ``libtbb`` in ``<prefix>/lib``, which the dynamic loader does not search, so it is loaded here
   first;
3. otherwise ``workqueue``: safe under fork but not under concurrent calls from several threads, so
   warpinit's own parallel calls then take a process-wide lock.

If some other code already started Numba's threads, the layer it got is kept, and the lock is used
when that layer is workqueue.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

_LOCK = threading.Lock()
_chosen: str | None = None


def _load_tbb() -> bool:
    names = ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll")
    folders = {os.path.join(sys.prefix, "lib"), os.path.join(sys.prefix, "Library", "bin"),
               os.path.join(sys.base_prefix, "lib")}
    for folder in folders:
        for name in names:
            path = os.path.join(folder, name)
            if os.path.exists(path):
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                except OSError:
                    continue
                break
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401  (only whether it loads matters)
    except ImportError:
        return False
    return True


def configure() -> str:
    """Choose the threading layer (once per process) and return the name asked for."""
    global _chosen
    if _chosen is None:
        import numba

        requested = os.environ.get("NUMBA_THREADING_LAYER")
        if requested:
            _chosen = requested
        else:
            _chosen = "tbb" if _load_tbb() else "workqueue"
            numba.config.THREADING_LAYER = _chosen
    return _chosen


def parallel_section():
    """Context manager around a parallel kernel call: a lock when the layer is not thread-safe."""
    configure()
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel call yet: the layer will be the one configured
        layer = numba.config.THREADING_LAYER
    return _LOCK if layer == "workqueue" else contextlib.nullcontext()
