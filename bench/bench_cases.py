"""warpinit and its peers on every op (pytest-benchmark; the same cases as ``warpinit bench``).

    WARPINIT_BENCH_SIZES=1e7,1e8 python -m pytest bench --benchmark-group-by=param:case

Compare warpinit's rows with the peers' and with the "limit" row (memory-write bandwidth) of the same
op and size. The cases are parametrised in conftest.py.
"""

import pytest

from warpinit.bench.peers import PEERS


def test_case(benchmark, case):
    if case.library in PEERS and not PEERS[case.library].available():
        pytest.skip(f"{case.library} is not installed: {PEERS[case.library].install}")
    function = case.build()
    if function is None:
        pytest.skip(f"{case.library} does not support {case.op} in {case.dtype}")
    function()  # warm-up: compilation, allocation
    benchmark.extra_info.update(op=case.op, size=case.size, batch=case.batch, library=case.library, work=case.work)
    benchmark(function)
