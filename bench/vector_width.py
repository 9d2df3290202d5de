"""Which vectors warpinit's CPU kernels compile to under each CPU tuning, read from their assembly.

    python -m warpinit.bench.vector_width [--cpus sapphirerapids,znver5,...] [--avx2]
    python -m warpinit.bench.vector_width --avx2-features   # the feature string of an AVX2-only CPU

The second form prints the host's LLVM features with AVX-512 removed, for timing the kernels as an
AVX2-only CPU runs them: ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES="$(...)" warpinit bench``.

Numba fixes the CPU name for a whole process, so each tuning compiles in a subprocess of its own
(``NUMBA_CPU_NAME=<name>`` and ``NUMBA_CPU_FEATURES`` = the host's features; ``--avx2`` adds a
run with every AVX-512 feature removed, an AVX2-only CPU) with a fresh cache directory. For each it counts, in the
assembly, the instructions that use zmm (512-bit) and ymm (256-bit) registers and the 64-bit lane
multiplies (``vpmuludq``: 32 x 32 -> 64 bits; ``vpmullq``: a full 64-bit product, slow on Intel) and
the compresses of the redraw pass's scan (``vpcompressq``, AVX-512 only; ``kernels/compress.py``) and
the float32 -> float16 conversions (``vcvtps2ph``, F16C), the vector spills (aligned moves, and
unaligned ones, of ymm and zmm registers to and from stack slots) and the functions that realign
their stack to ``_jit.STACK_ALIGNMENT`` of:

* ``span``: the float32 fill span (the uniform, normal and truncated-normal loops with their redraw
  pass);
* ``half`` (only when asked for): the float16 fill span, which rounds with F16C's conversion where
  the CPU has it and with integer steps where it does not (``kernels/bits.round_float16``);
* ``small``: the float32 small-matrix orthogonal member (Gaussians, reflectors, Q, store);
* ``plain njit``, ``cpu_jit`` and ``cpu_jit, aligned stack``: one elementwise loop compiled by plain
  ``numba.njit``, as any other Numba code in the process is, by warpinit's ``cpu_jit`` and by
  ``cpu_jit(aligned_stack=True)``;
* ``lanes`` (only when asked for): a loop from 64-bit words to float32 math to 16-bit stores, as the
  16-bit sampler loops are, compiled by ``cpu_jit()`` and by ``cpu_jit(lanes=...)`` for each ISA
  (``avx2: 8``, ``avx512: 16``), with the registers its float32 multiplies use; compiled without
  being run, so that any x86-64 host can inspect it for an AVX-512 target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from warpinit.kernels._jit import STACK_ALIGNMENT
from warpinit.kernels.bits import float32_bits
from warpinit.kernels.philox import philox_group
from warpinit.kernels.samplers import uniform24

# The Intel server tunings the kernels must run wide under, AMD's, and LLVM's generic ones.
CPUS = ("sapphirerapids", "emeraldrapids", "graniterapids", "icelake-server", "skylake-avx512", "znver4",
        "znver5", "x86-64-v4", "generic", "haswell")
CHILD_TIMEOUT = 600


def _plain_loop(x, y):
    for i in range(x.size):
        y[i] = x[i] * np.float32(2.5) + np.float32(1.0)


def _lanes_loop(out, k0, k1):
    for g in range(out.size):
        w0, w1, w2, w3 = philox_group(np.uint64(g), np.uint64(0), np.uint64(0), k0, k1)
        value = uniform24(w0) * uniform24(w1) + uniform24(w2) * uniform24(w3)
        out[g] = np.uint16(float32_bits(value) >> np.uint64(16))


# The forced widths the ``lanes`` part compiles ``_lanes_loop`` with, beside ``cpu_jit()``'s.
LANE_PROBES = {"avx2: 8": {"avx2": 8}, "avx512: 16": {"avx512": 16}}


def _float_registers(asm: str) -> dict:
    """The float32 multiplies of ``asm`` by register width, and its instruction count."""
    lines = [line for line in asm.splitlines() if line.startswith("\t") and not line.startswith("\t.")]
    multiplies = [line for line in lines if re.match(r"\tvmulps\b", line)]
    return {"mulps " + width: sum(f"%{width}" in line for line in multiplies) for width in ("xmm", "ymm", "zmm")} | {
        "instructions": len(lines)}


# A ymm or zmm register moved to or from a stack slot, with an aligned or an unaligned move.
_ALIGNED_MOVE = re.compile(r"\tvmov(aps|apd|dqa|dqa32|dqa64)\t.*%[yz]mm")
_UNALIGNED_MOVE = re.compile(r"\tvmov(ups|upd|dqu|dqu8|dqu16|dqu32|dqu64)\t.*%[yz]mm")
_STACK_SLOT = re.compile(r"\((%rsp|%rbp|%rbx)\)")


def counts(asm: str) -> dict:
    """Instructions using zmm / ymm registers, the 64-bit lane multiplies and the other instructions
    named in the module's docstring in ``asm``; its vector spills (ymm / zmm moves to and from stack
    slots), aligned and unaligned; and how many of its functions realign their stack."""
    lines = [line for line in asm.splitlines() if line.startswith("\t") and not line.startswith("\t.")]
    return {
        "zmm": sum("%zmm" in line for line in lines),
        "ymm": sum("%ymm" in line for line in lines),
        "vpmuludq": sum(bool(re.match(r"\tvpmuludq\b", line)) for line in lines),
        "vpmullq": sum(bool(re.match(r"\tvpmullq\b", line)) for line in lines),
        "vpcompressq": sum(bool(re.match(r"\tvpcompressq\b", line)) for line in lines),
        "vcvtps2ph": sum(bool(re.match(r"\tvcvtps2ph\b", line)) for line in lines),
        "aligned spills": sum(bool(_ALIGNED_MOVE.match(line) and _STACK_SLOT.search(line)) for line in lines),
        "unaligned spills": sum(bool(_UNALIGNED_MOVE.match(line) and _STACK_SLOT.search(line)) for line in lines),
        "stack realigned": sum(bool(re.match(rf"\tandq\t\$-{STACK_ALIGNMENT}, %rsp", line)) for line in lines),
    }


def _asm(function) -> str:
    """The assembly of a dispatcher (every signature) or of a C callback (``_jit.cpu_callback``)."""
    if not hasattr(function, "signatures"):
        return function._library.get_asm_str()
    return "\n".join(function.inspect_asm(signature) for signature in function.signatures)


def drawn_digest() -> str:
    """SHA-256 of values the fill kernels draw (truncated normals of every output kind, sizes that
    end inside a tile and inside a scan step, narrow and wide bounds): equal under every target."""
    import hashlib

    import warpinit as wi

    digest = hashlib.sha256()
    for dtype in ("float32", "float64", "bfloat16", "float16"):
        for lower, upper in ((-2.0, 2.0), (-0.1, 0.3), (1.5, 4.0)):
            for size in (7, 16389, 40001):
                values = np.ascontiguousarray(wi.truncated_normal(size, lower=lower, upper=upper, dtype=dtype, seed=size))
                digest.update(values.view(np.uint8).tobytes())
    return digest.hexdigest()


def inspect(parts=("span", "small", "plain")) -> dict:
    """The counts of each part, compiled in this process (with its tuning); with "bits" in
    ``parts``, also ``drawn_digest()``. Call it with a fresh NUMBA_CACHE_DIR: a kernel loaded from
    the cache has no assembly to inspect."""
    import numba
    import warpinit as wi
    from warpinit.kernels import fill_cpu, orthogonal
    from warpinit.kernels._jit import cpu_jit

    report = {"cpu": numba.config.CPU_NAME or "host"}
    if "span" in parts:
        wi.uniform(4096, seed=1)
        report["span"] = counts(_asm(fill_cpu.SPANS["float32"]))
    if "half" in parts:
        wi.uniform(4096, seed=1, dtype="float16")
        report["half"] = counts(_asm(fill_cpu.SPANS["float16"]))
    if "small" in parts:
        wi.orthogonal((64, 64), batch=4, seed=1)
        report["small"] = counts(_asm(orthogonal._SMALL_DRIVERS["float32"][0]))  # the member's callback
    if "plain" in parts:
        x = np.ones(64, np.float32)
        for name, compile_ in (("plain njit", numba.njit), ("cpu_jit", cpu_jit()),
                               ("cpu_jit, aligned stack", cpu_jit(aligned_stack=True))):
            function = compile_(_plain_loop)
            function(x, np.empty_like(x))
            report[name] = counts(_asm(function))
    if "lanes" in parts:
        report["lanes"] = {}
        for name, lanes in (("default", None), *LANE_PROBES.items()):
            function = cpu_jit(lanes=lanes)(_lanes_loop)
            function.compile("void(uint16[::1], uint64, uint64)")  # compiled, not run: any target
            report["lanes"][name] = _float_registers(_asm(function))
    if "bits" in parts:
        report["bits"] = drawn_digest()
    return report


def host_features() -> str:
    """The host's LLVM feature string (what Numba uses unless told otherwise)."""
    import llvmlite.binding as ll

    return ll.get_host_cpu_features().flatten()


def avx2_features() -> str:
    """The host's LLVM feature string with every AVX-512 feature turned off (an AVX2-only CPU)."""
    return ",".join("-" + f[1:] if f.startswith("+avx512") else f for f in host_features().split(","))


def no_f16c_features() -> str:
    """``avx2_features()`` without F16C, whose instructions convert float32 to float16 (a CPU from
    before 2012, or a virtual machine that hides them)."""
    return ",".join("-f16c" if f == "+f16c" else f for f in avx2_features().split(","))


def run_child(cpu: str | None, features: str | None = None, parts=("span", "small", "plain")) -> dict:
    """``inspect(parts)`` in a subprocess with NUMBA_CPU_NAME=cpu (None: the host's) and
    NUMBA_CPU_FEATURES=features (None: the host's)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for name, value in (("NUMBA_CPU_NAME", cpu), ("NUMBA_CPU_FEATURES", features)):
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        code = f"import json; from warpinit.bench.vector_width import inspect; print(json.dumps(inspect({tuple(parts)!r})))"
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT)
    if done.returncode:
        raise RuntimeError(f"inspecting under {cpu}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(reports: list[dict]) -> str:
    parts = ("span", "small", "plain njit", "cpu_jit")
    lines = ["| tuning | " + " | ".join(f"{p}: zmm / ymm" for p in parts) + " | span: vpmuludq / vpmullq | span: vpcompressq |",
             "|---|" + "---|" * (len(parts) + 2)]
    for report in reports:
        cells = [f"{report[p]['zmm']} / {report[p]['ymm']}" if p in report else "" for p in parts]
        span = report.get("span", {})
        lines.append(f"| {report['label']} | " + " | ".join(cells) + f" | {span.get('vpmuludq', '')} / {span.get('vpmullq', '')} | {span.get('vpcompressq', '')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpinit.bench.vector_width", description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", default=",".join(CPUS), help=f"comma-separated LLVM CPU names (default: {','.join(CPUS)})")
    parser.add_argument("--avx2", action="store_true", help="also compile for haswell with AVX-512 removed")
    parser.add_argument("--avx2-features", action="store_true", help="print the AVX2-only feature string and exit")
    args = parser.parse_args(argv)
    if args.avx2_features:
        print(avx2_features())
        return 0
    reports = []
    host = host_features()  # passed explicitly: Numba drops every feature for "generic"
    runs = [(None, None, "host")] + [(cpu, host, cpu + " (host features)") for cpu in args.cpus.split(",") if cpu]
    if args.avx2:
        runs.append(("haswell", avx2_features(), "haswell, AVX-512 removed"))
    for cpu, features, label in runs:
        report = run_child(cpu, features)
        report["label"] = label
        reports.append(report)
        print(f"{label}: {json.dumps({k: v for k, v in report.items() if k not in ('label', 'cpu')})}", file=sys.stderr)
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
