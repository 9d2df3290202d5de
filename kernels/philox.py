"""Philox4x32 — the counter-based generator behind every warpinit sampler — and the counter contract.

Philox is the generator of Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2,
3" (SC'11), as implemented in Random123's ``philox.h`` (and used by cuRAND's Philox and TensorFlow).
Each call maps a 128-bit counter and a 64-bit key to 128 random bits, with no state: any element of
any tensor can be generated alone, in any order, on any device, and give the same bits.

Counter contract v1 (frozen by the golden vectors in tests/; changing it is an announced release):

* key = (seed & 0xffffffff, seed >> 32) for a seed in [0, 2**64).
* counter = (g & 0xffffffff, g >> 32, stream, attempt), where g = flat_index // G is the element's
  group: one Philox call serves the G consecutive elements of its group from its four output words,
  and element i reads word(s) ``i mod G``. G is 4 when a candidate needs one 32-bit word (float32 and
  16-bit uniforms and normals), 2 when it needs two words (float64 uniforms and normals; float32
  two-uniform rejection proposals: the Robert and the fine methods of ``samplers``) and 1 when it
  needs four (float64 two-uniform proposals). ``samplers`` documents which words each method reads. A
  complex tensor of shape S is the real tensor of shape (*S, 2) of its parts (real part of element i
  at real index 2i, imaginary part at 2i + 1); ``samplers`` lists the words that feed each part.
* attempt is the rejection round: the a-th candidate of an element comes from the call with
  attempt = a; attempt 0 is the first draw.
* stream in [0, 2**32) selects an independent stream under the same seed.
* A tensor that needs its own 64-bit identity under a seed (a model variable, by its path) gets the
  derived seed ``derive_seed(seed, tag)``: Philox with key = seed and counter = (tag lo, tag hi,
  0xffffffff, 0xffffffff), whose first two words form seed' (word 0 high). Philox is a bijection of
  the counter under a fixed key, so two tags collide only through the truncation to 64 bits: about
  one pair in 2**32 tensors.

Philox4x32 is written once, as plain Python over ``uint64`` holding 32-bit words, and compiled for
the CPU and CUDA by ``_jit.shared``.
"""

from __future__ import annotations

import numpy as np

from ._jit import cpu_jit, shared

# The multipliers found by the authors' search for good avalanche (Random123: PHILOX_M4x32_0/1).
PHILOX_M4x32_0 = np.uint64(0xD2511F53)
PHILOX_M4x32_1 = np.uint64(0xCD9E8D57)
# Weyl sequence increments of the key schedule: the golden ratio and sqrt(3) - 1, as 32-bit fractions.
PHILOX_W32_0 = np.uint64(0x9E3779B9)
PHILOX_W32_1 = np.uint64(0xBB67AE85)
# Ten rounds: the paper's recommendation, which keeps a safety margin above the 7 rounds that
# already pass BigCrush; cuRAND, TensorFlow and JAX use ten as well.
PHILOX_ROUNDS = 10
# Random123 defines Philox for at most 16 rounds.
MAX_ROUNDS = 16

MASK32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)

# Counter words 2 and 3 of derive_seed: beyond any stream's attempts in practice.
DERIVE_SEED_WORD = 0xFFFFFFFF


@shared
def mulhilo32(a, b):
    """The high and low 32-bit halves of the 64-bit product of two 32-bit words (as uint64).

    ``b``'s high half is zero by contract; masking it says so to the compiler, which can then use a
    32 x 32 -> 64-bit multiply (x86's ``pmuludq``) instead of a full 64-bit one."""
    product = a * (b & MASK32)
    return product >> _U32, product & MASK32


@shared
def philox4x32(c0, c1, c2, c3, k0, k1, rounds):
    """Philox4x32-R on one counter. All words are uint64 holding 32-bit values.

    Args:
        c0, c1, c2, c3: the counter words.
        k0, k1: the key words.
        rounds: number of rounds (10 for Philox4x32-10).

    Returns:
        The four output words (uint64 holding 32-bit values).
    """
    for _ in range(rounds):
        hi0, lo0 = mulhilo32(PHILOX_M4x32_0, c0)
        hi1, lo1 = mulhilo32(PHILOX_M4x32_1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        # The key is bumped between rounds (bumping after the last round changes nothing).
        k0 = (k0 + PHILOX_W32_0) & MASK32
        k1 = (k1 + PHILOX_W32_1) & MASK32
    return c0, c1, c2, c3


@shared
def philox_group(group, stream, attempt, k0, k1):
    """Philox4x32-10 under the counter contract: the four words of ``group`` at ``attempt``.

    Args:
        group: uint64 group index g = flat_index // G.
        stream: uint64 stream in [0, 2**32).
        attempt: uint64 rejection round in [0, 2**32).
        k0, k1: uint64 key words (seed low and high halves).
    """
    return philox4x32(group & MASK32, group >> _U32, stream, attempt, k0, k1, PHILOX_ROUNDS)


def _philox_rows(counters, keys, rounds, out):
    for row in range(out.shape[0]):
        words = philox4x32(
            np.uint64(counters[row, 0]),
            np.uint64(counters[row, 1]),
            np.uint64(counters[row, 2]),
            np.uint64(counters[row, 3]),
            np.uint64(keys[row, 0]),
            np.uint64(keys[row, 1]),
            rounds,
        )
        for j in range(4):
            out[row, j] = np.uint32(words[j])


_philox_rows_cpu = None


def philox4x32_array(counter, key, rounds=PHILOX_ROUNDS):
    """Philox4x32-R over arrays of counters and keys (NumPy broadcasting over the leading axes).

    Args:
        counter: uint32 array of shape (..., 4).
        key: uint32 array of shape (..., 2).
        rounds: int in [0, 16]; 10 is Philox4x32-10.

    Returns:
        uint32 array of shape broadcast(counter[..., 0], key[..., 0]).shape + (4,).

    Raises:
        TypeError: counter or key is not an integer array, or rounds is not an int.
        ValueError: a word is outside [0, 2**32), the last axis of counter is not 4 or of key not 2,
            the leading axes do not broadcast, or rounds is out of range.
    """
    global _philox_rows_cpu
    counter = _as_words(counter, "counter", 4)
    key = _as_words(key, "key", 2)
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)):
        raise TypeError(f"philox4x32: rounds must be an int, got {type(rounds).__name__}: {rounds!r}")
    if not 0 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"philox4x32: rounds must be in [0, {MAX_ROUNDS}], got {rounds}")
    try:
        lead = np.broadcast_shapes(counter.shape[:-1], key.shape[:-1])
    except ValueError:
        raise ValueError(
            f"philox4x32: counter shape {counter.shape} and key shape {key.shape} do not broadcast"
        ) from None
    counters = np.ascontiguousarray(np.broadcast_to(counter, lead + (4,)).reshape(-1, 4))
    keys = np.ascontiguousarray(np.broadcast_to(key, lead + (2,)).reshape(-1, 2))
    out = np.empty((counters.shape[0], 4), dtype=np.uint32)
    if _philox_rows_cpu is None:
        _philox_rows_cpu = cpu_jit(cache=True)(_philox_rows)
    _philox_rows_cpu(counters, keys, int(rounds), out)
    return out.reshape(lead + (4,))


def _as_words(array, name, width):
    array = np.asarray(array)
    if array.dtype.kind not in "ui":
        raise TypeError(f"philox4x32: {name} must hold unsigned 32-bit integer words, got dtype {array.dtype}")
    if array.dtype != np.uint32:
        if array.size and (array.min() < 0 or array.max() > 0xFFFFFFFF):
            raise ValueError(f"philox4x32: {name} words must be in [0, 2**32)")
        array = array.astype(np.uint32)
    if array.ndim == 0 or array.shape[-1] != width:
        raise ValueError(f"philox4x32: {name} must have shape (..., {width}), got {array.shape}")
    return array


def key_table(seeds, streams) -> np.ndarray:
    """The (seed low, seed high, stream) words of each tensor of a launch, as a uint64 (K, 3) array.

    A kernel fills run r of its block from row ``r % K``: one row for one tensor (or any block of
    it), one row per member for a batch (whose run r is member r).

    Args:
        seeds: ints in [0, 2**64), one per row (or one for all rows).
        streams: ints in [0, 2**32), one per row (or one for all rows).
    """
    if type(seeds) is int and type(streams) is int and 0 <= seeds < 1 << 64 and 0 <= streams < 1 << 64:
        # One tensor's row, built without NumPy's elementwise machinery (a small call's common case).
        return np.array([(seeds & 0xFFFFFFFF, seeds >> 32, streams)], dtype=np.uint64)
    seeds = np.atleast_1d(np.asarray(seeds, dtype=np.uint64))
    streams = np.atleast_1d(np.asarray(streams, dtype=np.uint64))
    rows = max(seeds.size, streams.size)
    table = np.empty((rows, 3), dtype=np.uint64)
    table[:, 0] = seeds & np.uint64(0xFFFFFFFF)
    table[:, 1] = seeds >> np.uint64(32)
    table[:, 2] = streams
    return table


def split_seed(seed: int) -> tuple[int, int]:
    """The Philox key words (low, high) of a 64-bit seed."""
    return seed & 0xFFFFFFFF, seed >> 32


def derive_seed(seed: int, tag: int) -> int:
    """A 64-bit seed derived from ``seed`` for the tensor identified by the 64-bit ``tag``.

    See the module docstring: Philox with key = seed and counter = (tag lo, tag hi, 0xffffffff,
    0xffffffff); seed' = (word0 << 32) | word1.
    """
    k0, k1 = split_seed(seed)
    counter = np.array([tag & 0xFFFFFFFF, tag >> 32, DERIVE_SEED_WORD, DERIVE_SEED_WORD], np.uint32)
    words = philox4x32_array(counter, np.array([k0, k1], np.uint32))
    return (int(words[0]) << 32) | int(words[1])
