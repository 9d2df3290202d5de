"""Fork and threads: the threading layer is chosen before anything can start Numba's threads, and a
process that forks while another thread is inside warpinit leaves a usable child (and parent).

Every case runs in a fresh subprocess with a bounded timeout, so a hang fails the test instead of the
test run; the layer is set through NUMBA_THREADING_LAYER where a case is about one layer.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")

LAYERS = ["tbb", "workqueue"]

# Forks, waits for the child with a deadline (kills it when it hangs) and reports its exit status.
_FORK_HELPER = textwrap.dedent(
    """
    import os, time

    def fork_and_check(child, deadline=90):
        pid = os.fork()
        if pid == 0:
            try:
                ok = child()
            except BaseException:
                import traceback
                traceback.print_exc()
                ok = False
            os._exit(0 if ok else 3)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return "exit %d" % os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return "hung"
    """
)


def _run(code, timeout=240, **env):
    environment = dict(os.environ, **env)
    result = subprocess.run([sys.executable, "-c", _FORK_HELPER + textwrap.dedent(code)], env=environment,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # Numba's TBB layer prints this at a fork from a process where another thread has used TBB (it
    # cannot release that thread's hold on the scheduler); the child makes a new one and is tested.
    notice = "Unable to join threads to shut down before fork()"
    return [line for line in result.stdout.strip().splitlines() if line.strip() and notice not in line]


def test_an_orthogonal_first_call_does_not_pick_openmp():
    # Its batch-size logic asks numba.get_num_threads(), which starts Numba's threads: the layer must
    # already be chosen then. The child would be killed by GNU OpenMP otherwise.
    code = """
    import numpy as np, numba, warpinit as wi
    q = wi.orthogonal((600, 520), seed=1, device="cpu")
    print(numba.threading_layer())
    expected = wi.normal(1000, seed=2, device="cpu")
    print(fork_and_check(lambda: np.array_equal(wi.normal(1000, seed=2, device="cpu"), expected)))
    """
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    result = subprocess.run([sys.executable, "-c", _FORK_HELPER + textwrap.dedent(code)], env=environment,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    layer, child = result.stdout.split()[-3], " ".join(result.stdout.split()[-2:])
    assert layer in ("tbb", "workqueue")
    assert child == "exit 0"


@pytest.mark.parametrize("first", ["normal", "small_normal", "get_num_threads", "orthogonal_batch"])
def test_the_layer_is_chosen_whatever_the_first_call(first):
    calls = {
        "normal": "wi.normal(10**5, seed=1, device='cpu')",
        # a one-tile block runs on the calling thread: the threads start at the next, larger call
        "small_normal": "wi.normal(10, seed=1, device='cpu'); wi.normal(10**5, seed=1, device='cpu')",
        # anything that imports warpinit.kernels chooses the layer before Numba can start its threads
        "get_num_threads": "import warpinit.kernels; numba.get_num_threads()",
        "orthogonal_batch": "wi.orthogonal((520, 520), batch=2, seed=1, device='cpu')",
    }
    code = f"""
    import numba, warpinit as wi
    {calls[first]}
    print(numba.threading_layer())
    """
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    result = subprocess.run([sys.executable, "-c", _FORK_HELPER + textwrap.dedent(code)], env=environment,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] in ("tbb", "workqueue")


@pytest.mark.parametrize("layer", LAYERS)
def test_a_user_chosen_layer_is_kept_and_loads(layer):
    lines = _run(
        """
        import numba, warpinit as wi
        wi.normal(10**5, seed=1, device="cpu")
        print(numba.threading_layer())
        """,
        NUMBA_THREADING_LAYER=layer,
    )
    assert lines[-1] == layer


# A thread inside warpinit while another forks ----------------------------------------------------------

_DURING = """
import threading, time
import numpy as np, numba, warpinit as wi

WORK = {work!r}
big_sample = lambda: wi.truncated_normal((3000, 3000), seed=2, device="cpu")
big_orthogonal = lambda: wi.orthogonal((700, 600), seed=2, device="cpu")
expected = wi.normal(4096, seed=3, device="cpu")
q_expected = wi.orthogonal((600, 520), seed=5, device="cpu")  # the GEMM path, with BLAS's threads
big_sample(); big_orthogonal()  # compiled before the forks
print(numba.threading_layer())

stop = threading.Event()
started = threading.Event()

def worker():
    while not stop.is_set():
        started.set()
        (big_sample if WORK == "sampling" else big_orthogonal)()

def child():
    x = wi.normal(4096, seed=3, device="cpu")
    q = wi.orthogonal((600, 520), seed=5, device="cpu")
    z = wi.truncated_normal((300, 300), seed=7, device="cpu")
    return np.array_equal(x, expected) and np.abs(q - q_expected).max() < 1e-4 and np.all(np.abs(z) <= 2)

thread = threading.Thread(target=worker)
thread.start()
started.wait()
for delay in (0.0, 0.01, 0.03, 0.07):
    time.sleep(delay)
    print(fork_and_check(child))
stop.set()
thread.join(timeout=120)
print("parent", "hung" if thread.is_alive() else "ok")
"""


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("work", ["sampling", "orthogonal"])
def test_fork_while_another_thread_is_inside_warpinit(layer, work):
    lines = _run(_DURING.format(work=work), NUMBA_THREADING_LAYER=layer)
    assert lines[0] == layer
    assert lines[1:] == ["exit 0"] * 4 + ["parent ok"]


@pytest.mark.parametrize("layer", LAYERS)
def test_a_fork_waits_for_a_parallel_section_in_flight(layer):
    # Deterministic: another thread is inside warpinit's parallel section (holding the workqueue
    # layer's process-wide lock) when the fork is asked for; the fork waits until it ends.
    lines = _run(
        """
        import threading, time
        import numpy as np, warpinit as wi
        from warpinit.kernels import threads

        expected = wi.normal(1000, seed=3, device="cpu")
        held = threading.Event()
        ended = []

        def holder():
            with threads.parallel_section():
                held.set()
                time.sleep(0.5)
                ended.append(time.monotonic())

        thread = threading.Thread(target=holder)
        thread.start()
        held.wait()
        print(fork_and_check(lambda: np.array_equal(wi.normal(1000, seed=3, device="cpu"), expected)))
        print("forked after the section", bool(ended))
        thread.join()
        """,
        NUMBA_THREADING_LAYER=layer,
    )
    assert lines == ["exit 0", "forked after the section True"]


@pytest.mark.parametrize("layer", LAYERS)
def test_a_child_never_inherits_warpinits_locks_held(layer):
    # A thread stuck inside the BLAS lock and a parallel section (the workqueue layer's lock with it):
    # the fork goes ahead after its deadline with them held by that thread; the child has them free.
    lines = _run(
        """
        import threading
        import numpy as np, warpinit as wi
        from warpinit.kernels import threads

        threads.FORK_WAIT_SECONDS = 0.5
        expected = wi.normal(1000, seed=3, device="cpu")
        q_expected = wi.orthogonal((600, 520), seed=5, device="cpu")
        held, release = threading.Event(), threading.Event()

        def holder():
            with threads.BLAS_LOCK, threads.parallel_section():
                held.set()
                release.wait()

        thread = threading.Thread(target=holder)
        thread.start()
        held.wait()

        def child():
            q = wi.orthogonal((600, 520), seed=5, device="cpu")
            return np.array_equal(wi.normal(1000, seed=3, device="cpu"), expected) and np.abs(q - q_expected).max() < 1e-4

        print(fork_and_check(child))
        release.set()
        thread.join()
        print("parent", np.array_equal(wi.normal(1000, seed=3, device="cpu"), expected))
        """,
        NUMBA_THREADING_LAYER=layer,
    )
    assert lines == ["exit 0", "parent True"]
