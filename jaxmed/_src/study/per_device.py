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
import contextlib
import os
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, SingleDeviceSharding

from jaxmed._src.study import program_cache

__all__ = ["PerDeviceProgram", "deferred_compilation", "waited_seconds"]

_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
_DEFER = threading.local()
_WAITED = [0.0]


@contextlib.contextmanager
def deferred_compilation():
    """Within it (in this thread), a single-device program is traced and lowered at once but
    compiled in a background pool of one thread per core, and waited for at its first call:
    a study lowers the programs of all its cells first and XLA compiles them side by side
    (XLA releases the GIL; on 2 cores the README quickstart's two programs, 4.4 s each,
    compiled one after the other before)."""
    before = getattr(_DEFER, "on", False)
    _DEFER.on = True
    try:
        yield
    finally:
        _DEFER.on = before


def waited_seconds() -> float:
    """Seconds callers have spent waiting for deferred compilations (a running total)."""
    with _LOCK:
        return _WAITED[0]


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="jaxmed-compile")
        return _POOL


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
      program_id: what identifies ``fn`` for ``program_cache`` (e.g. the digests of the jaxprs
        it evaluates; the argument types, ``batch_size`` and the device are added here), or
        ``None``. With it, the lowered program is read from (or exported to) the disk cache
        while the persistent compilation cache is on.
      compiler_options: XLA options of the compilation (``Lowered.compile``), e.g. the
        backend optimisation level.
      out_tree: with ``program_id``, the pytree structure of ``fn``'s output (a program read
        from disk is not traced, so it cannot tell).
    """

    def __init__(self, fn: Callable, cell_key, sharding: NamedSharding, batch_size: int,
                 data: tuple = (), *, program_id: tuple | None = None, out_tree=None,
                 compiler_options: dict | None = None):
        self.devices = list(sharding.mesh.devices.flat)
        self.sharding = sharding
        self.batch_size = batch_size
        key_type = jax.ShapeDtypeStruct(cell_key.shape, cell_key.dtype)
        reps_type = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
        types = (key_type, reps_type) + tuple(data)
        directory = None if program_id is None else program_cache.program_dir()
        self._out_tree = None
        exported = None
        if directory is not None:  # the lowered program from disk (or exported there now)
            in_tree = jax.tree.structure(types)

            def flat(*leaves):
                return tuple(jax.tree.leaves(fn(*jax.tree.unflatten(in_tree, leaves))))

            flat.__name__ = flat.__qualname__ = getattr(fn, "__name__", "chunk")
            flat_types = tuple(jax.tree.leaves(types))
            key = program_cache.program_key(
                program_id, flat.__name__, batch_size, str(in_tree),
                [(t.shape, str(t.dtype)) for t in flat_types], str(out_tree),
                device=self.devices[0])
            exported = program_cache.load_or_export(flat, flat_types, key, directory)
        if exported is not None:
            def named(*leaves):  # the program keeps fn's name (logs, profiles)
                return exported.call(*leaves)

            named.__name__ = named.__qualname__ = flat.__name__
            jitted, self._out_tree = jax.jit(named), out_tree
        else:
            jitted = jax.jit(fn)
        lowered = []
        for d in self.devices:
            one = SingleDeviceSharding(d)
            placed = jax.tree.map(lambda t: jax.ShapeDtypeStruct(t.shape, t.dtype, sharding=one),
                                  types)
            lowered.append(jitted.lower(*(jax.tree.leaves(placed) if self._out_tree is not None
                                          else placed)))
        out_info = lowered[0].out_info
        if self._out_tree is not None:
            out_info = jax.tree.unflatten(self._out_tree, out_info)
        self.out_info = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), out_info)
        self._pending = None
        if len(lowered) == 1 and getattr(_DEFER, "on", False):  # compiled in the background
            self._compiled = None
            self._pending = _pool().submit(lowered[0].compile, compiler_options)
        elif len(lowered) == 1:  # in this thread (its JAX settings, e.g. jax.log_compiles)
            self._compiled = [lowered[0].compile(compiler_options)]
        else:  # the D compilations of one HLO run side by side (XLA releases the GIL)
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(lowered)) as pool:
                self._compiled = list(pool.map(lambda low: low.compile(compiler_options), lowered))

    def _ready(self) -> None:
        """Waits for a deferred compilation (its error, if any, is raised here)."""
        if self._compiled is None:
            t0 = time.perf_counter()
            try:
                self._compiled = [self._pending.result()]
            finally:
                with _LOCK:
                    _WAITED[0] += time.perf_counter() - t0
            self._pending = None

    def _run(self, compiled, *args):
        if self._out_tree is None:
            return compiled(*args)
        return jax.tree.unflatten(self._out_tree, compiled(*jax.tree.leaves(args)))

    def __call__(self, cell_key, reps, *data) -> Any:
        def per_device(arr):
            return {s.device: s.data for s in arr.addressable_shards}

        self._ready()
        shards = per_device(reps)
        leaves, treedef = jax.tree.flatten(data)
        leaf_shards = [per_device(x) for x in leaves]
        outs = [self._run(c, jax.device_put(cell_key, d), shards[d],
                          *jax.tree.unflatten(treedef, [ls[d] for ls in leaf_shards]))
                for c, d in zip(self._compiled, self.devices)]
        n = self.batch_size * len(self.devices)
        return jax.tree.map(
            lambda *parts: jax.make_array_from_single_device_arrays(
                (n,) + parts[0].shape[1:], self.sharding, list(parts)), *outs)
