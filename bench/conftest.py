"""pytest-benchmark front end of the cases in cases.py.

Sampling sizes come from WARPINIT_BENCH_SIZES (default 1e7,1e8), orthogonal shapes from
cases.ORTHOGONAL_SHAPES. The ops that time themselves in subprocesses (``cases.SUBPROCESS_OPS``: the
Keras and real-model ops) run through ``warpinit bench`` only. With ``--benchmark-disable`` (as CI
runs them) every case runs once at a tiny size, so that the suites cannot rot. When timing, thread counts are equalised before any peer
is imported (WARPINIT_BENCH_THREADS, default: all cores).
"""

import os


def pytest_configure(config):
    # Only when timing: the thread settings go into the environment, which the test suite's own
    # subprocesses would inherit when both run in one session (as CI runs them, timing disabled).
    if not config.getoption("benchmark_disable", False):
        from warpinit.bench import peers

        peers.set_threads(int(os.environ.get("WARPINIT_BENCH_THREADS", os.cpu_count())))


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    from warpinit.bench.cases import SUBPROCESS_OPS, cases
    from warpinit.bench.peers import OPS

    if metafunc.config.getoption("benchmark_disable", False):
        sizes, shapes, stack = (10**4,), ((1, 32), (4, 16)), (2, 32)
    else:
        sizes = tuple(int(float(s)) for s in os.environ.get("WARPINIT_BENCH_SIZES", "1e7,1e8").split(","))
        shapes, stack = None, None
    ops = tuple(op for op in OPS if op not in SUBPROCESS_OPS)
    selected = cases(ops, sizes=sizes, **({"orthogonal_shapes": shapes} if shapes else {}),
                     **({"keras_stack": stack} if stack else {}))
    metafunc.parametrize("case", selected, ids=[c.name for c in selected])
