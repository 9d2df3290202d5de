"""pytest-benchmark front end of the cases in cases.py.

Sampling sizes come from WARPINIT_BENCH_SIZES (default 1e7,1e8), orthogonal shapes from
cases.ORTHOGONAL_SHAPES. With ``--benchmark-disable`` (as CI runs them) every case runs once at a
tiny size, so that the suites cannot rot. Thread counts are
equalised before any peer is imported (WARPINIT_BENCH_THREADS, default: all cores).
"""

import os

from warpinit.bench import peers

peers.set_threads(int(os.environ.get("WARPINIT_BENCH_THREADS", os.cpu_count())))


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    from warpinit.bench.cases import cases

    if metafunc.config.getoption("benchmark_disable", False):
        sizes, shapes = (10**4,), ((1, 32), (4, 16))
    else:
        sizes = tuple(int(float(s)) for s in os.environ.get("WARPINIT_BENCH_SIZES", "1e7,1e8").split(","))
        shapes = None
    selected = cases(sizes=sizes, **({"orthogonal_shapes": shapes} if shapes else {}))
    metafunc.parametrize("case", selected, ids=[c.name for c in selected])
