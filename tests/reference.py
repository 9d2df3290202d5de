"""A slow, independent NumPy statement of the counter contract, for the tests.

It shares no code with warpinit: Philox is written again over uint64 arrays, and the transforms use
NumPy's float64 libm instead of warpinit's polynomials. Uniforms come out bit for bit equal to
warpinit's; normals agree to float32 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MASK = np.uint64(0xFFFFFFFF)
M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)


def philox(c0, c1, c2, c3, k0, k1, rounds=10):
    """Philox4x32-R over arrays (uint64 holding 32-bit words)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in (c0, c1, c2, c3))
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(rounds):
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK
        k0 = (k0 + W0) & MASK
        k1 = (k1 + W1) & MASK
    return c0, c1, c2, c3


def words(seed, stream, attempt, groups):
    """The four words of the Philox calls of ``groups`` (uint64 array) as a (n, 4) uint64 array."""
    groups = np.asarray(groups, dtype=np.uint64)
    out = philox(groups & MASK, groups >> np.uint64(32), np.full_like(groups, stream),
                 np.full_like(groups, attempt), seed & 0xFFFFFFFF, seed >> 32)
    return np.stack(out, axis=-1)


def uniform_float32(seed, stream, indices, minval=0.0, maxval=1.0):
    indices = np.asarray(indices, dtype=np.uint64)
    w = words(seed, stream, 0, indices // np.uint64(4))[np.arange(indices.size), (indices % np.uint64(4)).astype(np.int64)]
    u = (w >> np.uint64(8)).astype(np.float32) * np.float32(2.0**-24)
    return np.float32(minval) + np.float32(maxval - minval) * u


def uniform_float64(seed, stream, indices, minval=0.0, maxval=1.0):
    indices = np.asarray(indices, dtype=np.uint64)
    w = words(seed, stream, 0, indices // np.uint64(2))
    lane = (indices % np.uint64(2)).astype(np.int64)
    rows = np.arange(indices.size)
    x = (w[rows, 2 * lane] << np.uint64(32)) | w[rows, 2 * lane + 1]
    u = (x >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return minval + (maxval - minval) * u


def normal_float32(seed, stream, indices, attempt=0):
    """Standard normal candidates of float32 elements (float64 math)."""
    indices = np.asarray(indices, dtype=np.uint64)
    w = words(seed, stream, attempt, indices // np.uint64(4))
    lane = (indices % np.uint64(4)).astype(np.int64)
    rows = np.arange(indices.size)
    pair = lane // 2
    radius_word = w[rows, 2 * pair]
    angle_word = w[rows, 2 * pair + 1]
    u = ((radius_word >> np.uint64(8)).astype(np.float64) + 1.0) * 2.0**-24
    angle = 2.0 * np.pi * (angle_word >> np.uint64(8)).astype(np.float64) * 2.0**-24
    r = np.sqrt(-2.0 * np.log(u))
    return np.where(lane % 2 == 0, r * np.cos(angle), r * np.sin(angle))


def normal_float64(seed, stream, indices, attempt=0):
    indices = np.asarray(indices, dtype=np.uint64)
    w = words(seed, stream, attempt, indices // np.uint64(2))
    lane = (indices % np.uint64(2)).astype(np.int64)
    radius = ((w[:, 0] << np.uint64(32)) | w[:, 1]) >> np.uint64(11)
    angle_bits = ((w[:, 2] << np.uint64(32)) | w[:, 3]) >> np.uint64(11)
    u = (radius.astype(np.float64) + 1.0) * 2.0**-53
    angle = 2.0 * np.pi * angle_bits.astype(np.float64) * 2.0**-53
    r = np.sqrt(-2.0 * np.log(u))
    return np.where(lane == 0, r * np.cos(angle), r * np.sin(angle))


def truncated_normal_float32(seed, stream, indices, lower, upper, margin=1e-5):
    """Rejection with the normal proposal, as the contract states it (attempts 0, 1, ...).

    Returns:
        (values, ambiguous): float64 values, and a mask of elements where some candidate fell within
        ``margin`` of a bound (float32 and float64 arithmetic may decide those differently).
    """
    indices = np.asarray(indices, dtype=np.uint64)
    values = np.full(indices.size, np.nan)
    ambiguous = np.zeros(indices.size, dtype=bool)
    todo = np.arange(indices.size)
    attempt = 0
    while todo.size:
        z = normal_float32(seed, stream, indices[todo], attempt)
        ambiguous[todo] |= (np.abs(z - lower) < margin) | (np.abs(z - upper) < margin)
        ok = (z >= lower) & (z <= upper)
        values[todo[ok]] = z[ok]
        todo = todo[~ok]
        attempt += 1
    return values, ambiguous


def read_kat(path: Path):
    """(rounds, counter words, key words, expected words) rows of a Random123 kat_vectors table."""
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] != "philox4x32":
            continue
        numbers = [int(f, 16) for f in fields[2:]]
        rows.append((int(fields[1]), numbers[0:4], numbers[4:6], numbers[6:10]))
    return rows


def ulp_distance(a, b, dtype):
    """Distance in units in the last place between two arrays of ``dtype`` values (float16/32/64)."""
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[np.dtype(dtype).itemsize]
    magnitude = (1 << (8 * np.dtype(dtype).itemsize - 1)) - 1

    def line(x):  # sign-magnitude bits onto a monotonic integer line; +0 and -0 meet at 0
        i = np.asarray(x, dtype=dtype).view(ints).astype(np.int64)
        return np.where(i < 0, -(i & magnitude), i)

    return np.abs(line(a) - line(b))
