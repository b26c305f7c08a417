"""One single-device program, run on every device: a study's numbers do not depend on how many.

A program partitioned over a mesh of D > 1 devices (``shard_map``) is compiled by XLA's SPMD
pipeline, which fuses and simplifies it differently from the same function compiled for one
device (measured on ``longterm-s1``'s nonstationary estimator: 41 against 33 ``dot``
instructions, 398 against 369 fusions), so some reductions round differently and 2 devices
differed from 1 by up to 1e-13 (relative) in the estimates. Here the replication block is
compiled as an ordinary single-device program, once per device from the same HLO, and the
devices run it side by side on their own blocks: every device, whatever their number, runs
the program a single device runs. The price: D compilations of that program instead of one
(run side by side in threads).
"""

import concurrent.futures
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, SingleDeviceSharding

__all__ = ["PerDeviceProgram"]


class PerDeviceProgram:
    """``(cell_key, reps) -> outputs``: ``reps`` sharded along its first axis over the devices
    of ``sharding`` (``batch_size`` per device); each device runs ``fn`` on its own slice, and
    the outputs are assembled, without copies, into arrays sharded the same way.

    Args:
      fn: ``(cell_key, reps (batch_size,) int32, *data) -> pytree`` of arrays with leading
        axis ``batch_size``; traced once, compiled once per device.
      cell_key: a key array (replicated, or on any device); only its type is used here.
      sharding: the ``NamedSharding`` of ``reps`` over a 1-D mesh of the devices.
      batch_size: replications per device and call.
      data: ``ShapeDtypeStruct`` pytrees of extra arguments, per device (leading axis
        ``batch_size``), e.g. the ``out_info`` of another ``PerDeviceProgram`` whose
        outputs are passed on (sharded the same way).
    """

    def __init__(self, fn: Callable, cell_key, sharding: NamedSharding, batch_size: int,
                 data: tuple = ()):
        self.devices = list(sharding.mesh.devices.flat)
        self.sharding = sharding
        self.batch_size = batch_size
        jitted = jax.jit(fn)
        key_type = jax.ShapeDtypeStruct(cell_key.shape, cell_key.dtype)
        lowered = []
        for d in self.devices:
            one = SingleDeviceSharding(d)
            key_t = jax.ShapeDtypeStruct(key_type.shape, key_type.dtype, sharding=one)
            reps_t = jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=one)
            data_t = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one),
                                  tuple(data))
            lowered.append(jitted.lower(key_t, reps_t, *data_t))
        self.out_info = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                                     lowered[0].out_info)
        # the D compilations of one HLO run side by side (XLA releases the GIL)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(lowered)) as pool:
            self._compiled = list(pool.map(lambda low: low.compile(), lowered))

    def __call__(self, cell_key, reps, *data) -> Any:
        def per_device(arr):
            return {s.device: s.data for s in arr.addressable_shards}

        shards = per_device(reps)
        leaves, treedef = jax.tree.flatten(data)
        leaf_shards = [per_device(x) for x in leaves]
        outs = [c(jax.device_put(cell_key, d), shards[d],
                  *jax.tree.unflatten(treedef, [ls[d] for ls in leaf_shards]))
                for c, d in zip(self._compiled, self.devices)]
        n = self.batch_size * len(self.devices)
        return jax.tree.map(
            lambda *parts: jax.make_array_from_single_device_arrays(
                (n,) + parts[0].shape[1:], self.sharding, list(parts)), *outs)
