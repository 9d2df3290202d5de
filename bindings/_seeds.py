"""Per-tensor identities under a model seed, shared by every face's whole-model initialization.

A tensor is drawn from ``tensor_seed(model seed, path)`` = ``derive_seed(model seed, path_tag(path))``:
``path`` names it inside the model (Keras: a structural path of sublayer indices; PyTorch: the
qualified parameter name), ``path_tag`` hashes it to 64 bits with BLAKE2b (a 32-bit hash would
collide in large models), and ``warpinit.kernels.philox.derive_seed`` mixes the two through Philox.
"""

from __future__ import annotations

import hashlib


def path_tag(path: str) -> int:
    """The 64-bit tag of a path: the first 8 bytes of its BLAKE2b digest, little-endian."""
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "little")


def tensor_seed(seed: int, path: str) -> int:
    """The seed of the tensor at ``path`` in a model initialized with ``seed`` (int in [0, 2**64))."""
    from warpinit.kernels.philox import derive_seed

    return derive_seed(seed, path_tag(path))
