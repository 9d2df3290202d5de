"""Golden vectors of the counter contract v1: a few values per sampler and dtype for fixed seeds.

``python tests/golden.py`` rewrites tests/data/golden_v1.json from the current code. Doing so is a
deliberate, announced change of the stream (a new contract version), never a fix for a failing test.
"""

import json
import sys
from pathlib import Path

import numpy as np

import warpinit as wi

PATH = Path(__file__).parent / "data" / "golden_v1.json"
DTYPES = ["float16", "bfloat16", "float32", "float64"]
# Complex values: pairs of real values (warpinit._complex), frozen as the bits of their real parts
# and imaginary parts in turn.
COMPLEX_DTYPES = ["complex64", "complex128"]
COMPLEX_SAMPLERS = {
    "normal": (wi.normal, {"mean": 0.25, "stddev": 3.0}),
    "normal_complex_mean": (wi.normal, {"mean": complex(-1.0, 0.5), "stddev": 0.5}),
}
SAMPLERS = {
    "uniform": (wi.uniform, {"minval": -1.5, "maxval": 2.5}),
    "normal": (wi.normal, {"mean": 0.25, "stddev": 3.0}),
    "truncated_normal": (wi.truncated_normal, {}),
    "truncated_normal_tail": (wi.truncated_normal, {"lower": 4.0, "upper": np.inf}),
    "truncated_normal_narrow": (wi.truncated_normal, {"lower": 1.9, "upper": 2.0}),
    "truncated_normal_left": (wi.truncated_normal, {"mean": -1.0, "stddev": 0.5, "lower": -12.0, "upper": -11.0}),
}
# The fine methods (and the uniform over a float16 range's finite part), each in the dtype where the
# request needs it: name -> (sampler, dtype, kwargs).
FINE = {
    "truncated_normal_fine_normal": (wi.truncated_normal, "float32", {"mean": 0.1, "stddev": 1e-7}),
    "truncated_normal_fine_tail": (wi.truncated_normal, "float32",
                                   {"mean": 0.1, "stddev": 1e-6, "lower": 3.0, "upper": np.inf}),
    "truncated_normal_fine_narrow": (wi.truncated_normal, "float32", {"lower": 3.0, "upper": 3.0001}),
    "truncated_normal_fine_boundary": (wi.truncated_normal, "bfloat16",
                                       {"mean": 1002.0, "stddev": 0.1, "lower": -25.0, "upper": 25.0}),
    "truncated_normal_fine_midpoint": (wi.truncated_normal, "float16",
                                       {"mean": 1000.25, "stddev": 0.005, "lower": -np.inf, "upper": np.inf}),
    "truncated_normal_fine_far_tail": (wi.truncated_normal, "float64", {"lower": 1e6, "upper": np.inf}),
    "truncated_normal_fine_far_narrow": (wi.truncated_normal, "float64", {"lower": 1e6, "upper": 1e6 + 1e-7}),
    "uniform_fine": (wi.uniform, "float32", {"minval": 0.1, "maxval": 0.1 + 5e-8}),
    "uniform_finite_part": (wi.uniform, "float16", {"minval": 0.0, "maxval": 1e10}),
}
# (seed, stream, shape, index): the first elements of a small tensor, and a block deep inside one of
# 2**40 elements (group indices above 2**32).
DRAWS = [
    (0, 0, [10], None),
    (0xFEDCBA9876543210, 12345, [2**20, 2**20], [2**20 - 3, [2**20 - 6, 2**20]]),
]


def bits(array):
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype.kind == "c":  # real and imaginary parts in turn
        flat = flat.view(np.float32 if flat.dtype == np.complex64 else np.float64)
    return [format(int(v), "x") for v in flat.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[flat.itemsize])]


def cases():
    """(sampler name, sampler, keyword arguments, dtypes) of every table: real samplers, complex ones,
    then the fine methods."""
    for name, (sampler, kwargs) in SAMPLERS.items():
        yield name, sampler, kwargs, DTYPES
    for name, (sampler, kwargs) in COMPLEX_SAMPLERS.items():
        yield name, sampler, kwargs, COMPLEX_DTYPES
    for name, (sampler, dtype, kwargs) in FINE.items():
        yield name, sampler, kwargs, [dtype]


def sampler_of(row):
    """The sampler and keyword arguments of a table row."""
    if row["sampler"] in FINE:
        sampler, _, kwargs = FINE[row["sampler"]]
        return sampler, kwargs
    table = COMPLEX_SAMPLERS if row["dtype"] in COMPLEX_DTYPES else SAMPLERS
    return table[row["sampler"]]


def index_of(entry):
    if entry is None:
        return None
    return tuple(slice(*e) if isinstance(e, list) else e for e in entry)


def generate():
    table = []
    for name, sampler, kwargs, dtypes in cases():
        for dtype in dtypes:
            for seed, stream, shape, index in DRAWS:
                values = sampler(tuple(shape), dtype=dtype, seed=seed, stream=stream, index=index_of(index),
                                 device="cpu", **kwargs)
                table.append({"sampler": name, "dtype": dtype, "seed": seed, "stream": stream, "shape": shape,
                              "index": index, "bits": bits(values)})
    return table


if __name__ == "__main__":
    rows = ",\n".join("  " + json.dumps(row) for row in generate())
    PATH.write_text('{"contract": "v1", "vectors": [\n' + rows + "\n]}\n")
    print(f"wrote {PATH}", file=sys.stderr)
