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

The choice has to come before anything starts Numba's threads: a parallel kernel, but also
``numba.get_num_threads()`` (which the orthogonal batches ask). ``warpinit.kernels`` therefore calls
``configure`` when it is imported, before any of its modules can run. If some other code already
started Numba's threads, the layer it got is kept, and the lock is used when that layer is workqueue.

Fork: a child process has only the thread that forked. A lock that another thread of the parent held
at that moment would stay held in the child for ever, and a layer forked in the middle of a parallel
region is left half-way there. So a fork (``os.register_at_fork``) first waits for warpinit's parallel
sections in flight in other threads (and for ``BLAS_LOCK``) and holds new ones back until it is done;
the child gets fresh locks and a fresh gate.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

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
            if requested in ("tbb", "safe", "threadsafe", "forksafe", "default"):
                _load_tbb()  # Numba's loader alone does not find the pip wheel's libtbb
            _chosen = requested
        else:
            _chosen = "tbb" if _load_tbb() else "workqueue"
            numba.config.THREADING_LAYER = _chosen
    return _chosen


class _ForkGate:
    """Parallel sections run together; a fork waits until none runs, and none starts until it is done.

    A fork in the middle of a parallel kernel leaves the layer's worker threads half-way in the child
    (TBB warns that the child "may be in an invalid state"; the workqueue layer's lock stays held), so
    the "before" fork handler closes the gate and waits for the sections in flight, the parent reopens
    it after the fork, and the child starts with a new, open gate and a new lock.
    """

    def __init__(self):
        self.condition = threading.Condition(threading.Lock())
        self.active = 0
        self.forking = False

    @contextlib.contextmanager
    def section(self):
        with self.condition:
            while self.forking:
                self.condition.wait()
            self.active += 1
        try:
            yield
        finally:
            with self.condition:
                self.active -= 1
                self.condition.notify_all()

    def before_fork(self) -> None:
        self.condition.acquire()
        self.forking = True
        # A kernel always ends; the deadline only keeps a fork from waiting for ever on a stuck thread.
        self.condition.wait_for(lambda: self.active == 0, timeout=FORK_WAIT_SECONDS)

    def after_fork_in_parent(self) -> None:
        self.forking = False
        self.condition.notify_all()
        self.condition.release()


FORK_WAIT_SECONDS = 600.0
_GATE = _ForkGate()
_LOCK = threading.Lock()

# BLAS's thread count is process-wide, and the orthogonal GEMM path's bits depend on it (a batch runs
# one BLAS thread per member, a single matrix every thread): CPU generation of large orthogonal members
# holds this lock, so concurrent calls cannot change each other's thread count mid-way. Re-entrant, so
# that a caller that pins the thread count itself (warpinit.dask, warpinit.jax) can hold it around its
# call. A fork waits for it too: OpenBLAS's thread pool does not survive a fork in the middle of a
# threaded GEMM (the parent's GEMM and the child's next threaded one then wait for ever; NumPy's own
# matmul too). Look it up as ``threads.BLAS_LOCK`` at each use: a forked child gets a new one.
BLAS_LOCK = threading.RLock()


_blas_held_for_fork = False


def _before_fork() -> None:
    global _blas_held_for_fork
    # The BLAS lock first: its holder runs parallel sections inside it, never the other way round.
    _blas_held_for_fork = BLAS_LOCK.acquire(timeout=FORK_WAIT_SECONDS)
    _GATE.before_fork()


def _after_fork_in_parent() -> None:
    _GATE.after_fork_in_parent()
    if _blas_held_for_fork:
        BLAS_LOCK.release()


def _after_fork_in_child() -> None:
    global _GATE, _LOCK, BLAS_LOCK
    _GATE = _ForkGate()
    _LOCK = threading.Lock()
    BLAS_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def parallel_section():
    """Context manager around a parallel kernel call: the fork gate, and a process-wide lock when the
    layer is not thread-safe (workqueue)."""
    configure()
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel call yet: the layer will be the one configured
        layer = numba.config.THREADING_LAYER
    with _GATE.section(), (_LOCK if layer == "workqueue" else contextlib.nullcontext()):
        yield
