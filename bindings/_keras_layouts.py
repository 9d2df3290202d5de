"""Keras variables under a ``keras.distribution``: each device draws only its own block.

Under a distribution, Keras's JAX backend passes an initializer the variable's layout; ``laid_out``
then assembles the tensor from blocks that each device draws alone (bit for bit the same blocks as
the undistributed tensor, by the counter contract). Other backends draw the whole tensor and hand it
to ``keras.distribution.distribute_tensor``.
"""

from __future__ import annotations

import keras

from . import _distributions, _keras_tensors


def laid_out(distribution, shape, dtype: str, seed: int, layout):
    """The tensor of ``distribution`` for ``seed``, distributed as ``layout``."""
    from warpinit.kernels.philox import key_table

    if keras.backend.backend() != "jax":
        if not isinstance(layout, keras.distribution.TensorLayout):  # checked before anything is drawn
            raise TypeError(f"layout must be a keras.distribution.TensorLayout on the {keras.backend.backend()} "
                            f"backend, got {type(layout).__name__}: {layout!r}")
        where = _keras_tensors.device()
        handle, view = _keras_tensors.destination(shape, dtype, where)
        _distributions.generate(distribution, shape, dtype, key_table(seed, 0), where, view.reshape(1, *shape))
        whole = _keras_tensors.to_tensor(_keras_tensors.tensor(handle, dtype), dtype)
        return keras.distribution.distribute_tensor(whole, layout)
    from . import _jax_arrays

    def block(ranges, device, cache):
        return _distributions.generate_block(distribution, shape, dtype, seed, ranges, device, cache)

    return _jax_arrays.assemble(shape, _distributions.numpy_dtype(dtype), jax_sharding(layout), block)


def jax_sharding(layout):
    """A concrete ``jax.sharding.Sharding`` for a Keras layout: a TensorLayout's backend layout, or a
    JAX sharding; a NamedSharding over an abstract mesh (what Keras passes inside ``jax.set_mesh``)
    is bound to the mesh that is set."""
    import jax

    sharding = getattr(layout, "backend_layout", layout)
    if not isinstance(sharding, jax.sharding.Sharding):
        raise TypeError(f"layout must be a keras.distribution.TensorLayout or a jax.sharding.Sharding, got "
                        f"{type(layout).__name__}: {layout!r}")
    if isinstance(sharding, jax.sharding.NamedSharding) and isinstance(sharding.mesh, jax.sharding.AbstractMesh):
        mesh = jax.sharding.get_mesh()
        if mesh.empty or mesh.axis_names != sharding.mesh.axis_names:
            raise ValueError(f"layout {sharding} is over an abstract mesh and no matching mesh is set (jax.set_mesh)")
        sharding = jax.sharding.NamedSharding(mesh, sharding.spec)
    return sharding


def split_layout(variable):
    """The layout that splits a JAX variable over several devices under the active keras.distribution
    (resolved as Keras resolves it when it initializes the variable), or None: other backends, no
    distribution, or a replicated layout (drawn once and copied by Keras)."""
    if keras.backend.backend() != "jax" or not hasattr(variable, "_initialize_layout"):
        return None
    variable._initialize_layout()  # what Keras's own initialization does first; sets variable._layout
    layout = getattr(variable, "_layout", None)
    if layout is None or jax_sharding(layout).is_fully_replicated:
        return None
    return layout
