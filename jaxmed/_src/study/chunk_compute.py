"""Computing one chunk of a study: the compiled program of a grid cell and its calls.

For grid cell ``c`` and replication ``r`` the replication key is ``fold_in(fold_in(key, c),
r)``, split into a simulation key and an estimation key (``replication_fn``). One compiled
program per cell computes one block of ``batch_size`` replications per device (``vmap``
inside; every device runs the same single-device program on its own block,
``per_device.PerDeviceProgram``, so the numbers do not depend on the number of devices); a chunk
of several blocks is several calls of that same program, padded to a whole number of calls
(the padding replications are computed and dropped). Replication ``r`` is therefore always
computed in block ``r // batch_size``, slot ``r % batch_size``, by the same program whatever
the chunk size and wherever the chunk runs: in the study's own process or on a Dask worker
(:class:`ChunkComputer` is what both run).

A :class:`ChunkJob` holds everything a worker needs (design, estimator, replications, batch
size, raw key data, dtype) and nothing tied to a process (no devices, no arrays), so Dask can
ship it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.precision import precision
from jaxmed._src.study import per_device, program_cache
from jaxmed._src.study.per_device import PerDeviceProgram
from jaxmed._src.study.plan import ChunkTask
from jaxmed._src.study.replication_identity import known_or_traced

__all__ = ["ChunkJob", "ChunkComputer", "replication_fn", "chunk_fn", "compiled_chunk_fn",
           "check_table", "job_precision", "describe_devices"]

_AXIS = "rep"


class ChunkJob(NamedTuple):
    """What computes the chunks of one study (picklable; no devices or device arrays).

    Attributes:
      design: the design (``simulate(key, n, horizon)``).
      estimator: the ``EstimatorSpec``.
      reps: replications per cell.
      batch_size: replications per block (vmap width per device).
      key_data: the study key's raw data (uint32 numpy array).
      key_impl: the key's PRNG implementation name (e.g. ``"threefry2x32"``).
      dtype: ``"float64"`` or ``"float32"``.
      padded_n: per grid cell, the number of trajectories the cell is estimated at when
        its data are padded (``n_buckets``), or None (not padded); None: no cell is.
      xla_opt_level: XLA's backend optimisation level of the programs (``None``: XLA's
        default).
    """

    design: Any
    estimator: EstimatorSpec
    reps: int
    batch_size: int
    key_data: np.ndarray
    key_impl: str
    dtype: str
    padded_n: tuple | None = None
    xla_opt_level: int | None = None

    def key(self):
        """The study key, rebuilt from its raw data."""
        return jax.random.wrap_key_data(jnp.asarray(self.key_data, jnp.uint32), impl=self.key_impl)


@contextlib.contextmanager
def job_precision(dtype):
    """``precision(dtype)``; float32 means float32 even where x64 is on globally."""
    with contextlib.ExitStack() as stack:
        dt = stack.enter_context(precision(dtype))
        if dt == np.float32:
            stack.enter_context(jax.enable_x64(False))
        yield dt


def replication_fn(design, estimator: EstimatorSpec, n: int, horizon: int) -> Callable:
    """``rep_key -> EffectTable``: simulate with the first half of the split, estimate with the second."""

    def one(rep_key) -> EffectTable:
        sim_key, est_key = jax.random.split(rep_key)
        data = design.simulate(sim_key, n, horizon)
        return EffectTable(*estimator.fn(est_key, data))

    return one


class TracedReplication(NamedTuple):
    """``replication_fn(design, estimator, n, horizon)`` traced once: ``rep_key -> EffectTable``
    by evaluating the jaxpr (the same primitives, so ``vmap`` of it lowers to the program
    ``vmap`` of the function gives, without running jaxmed's Python again)."""

    jaxpr: Any  # jax.extend.core.ClosedJaxpr
    out_tree: Any

    def __call__(self, *args) -> Any:
        from jax.extend.core import jaxpr_as_fun

        return jax.tree.unflatten(self.out_tree, jaxpr_as_fun(self.jaxpr)(*jax.tree.leaves(args)))

    def out_types(self):
        """The output's ``ShapeDtypeStruct`` pytree."""
        return jax.tree.unflatten(self.out_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype)
                                                  for a in self.jaxpr.out_avals])


def traced(fn: Callable, *args) -> TracedReplication:
    """``fn`` traced once at the types of ``args`` (arrays or ``ShapeDtypeStruct`` pytrees)."""
    closed, shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    return TracedReplication(closed, jax.tree.structure(shape))


def _program_id(kind: str, *traced_fns: TracedReplication) -> tuple | None:
    """What identifies a chunk program built from ``traced_fns`` (``program_cache``), or
    ``None`` when lowered programs are not kept on disk."""
    if program_cache.program_dir() is None:
        return None
    return (kind,) + tuple(getattr(t, "digest", None) or program_cache.jaxpr_digest(t.jaxpr)
                           for t in traced_fns)


_TRACED: "collections.OrderedDict[tuple, Any]" = collections.OrderedDict()
# the output structure of a replication (``replication_fn`` returns an ``EffectTable``)
_EFFECT_TABLE_TREE = jax.tree.structure(EffectTable(*range(len(EffectTable._fields))))


def traced_replication(design, estimator: EstimatorSpec, n: int, horizon: int,
                       key) -> TracedReplication:
    """The jaxpr of one replication (``replication_fn``) for a key like ``key``, traced once per
    process and reused: the study sizes its default batch from it (``memory``) and every
    cell's program is built from it (``compiled_chunk_fn``), so the pipeline's Python is
    traced once per cell, not twice.

    While lowered programs are kept on disk, what the trace tells (its digest, memory bound
    and output structure) is also recorded there, and a later process that builds the same
    replication from describable parts reads it back instead of tracing
    (``replication_identity``): a ``KnownReplication``, traced only if its program has to be
    exported again."""
    key_type = (tuple(key.shape), str(key.dtype))
    rest = (n, horizon, key_type, jax.config.jax_enable_x64)
    with _COMPILED_LOCK:
        cache_key, hit = _lookup(_TRACED, design, estimator, rest)
    if hit is not None:
        return hit
    one = known_or_traced("replication", design, estimator, rest,
                          lambda: traced(replication_fn(design, estimator, n, horizon), key),
                          _EFFECT_TABLE_TREE)
    with _COMPILED_LOCK:
        _store(_TRACED, cache_key, one, design, estimator)
    return one


def simulate_fn(design, pad: Callable, n: int, horizon: int, n_pad: int) -> Callable:
    """``rep_key -> data`` simulated at ``n`` (the key as in ``replication_fn``), padded to
    ``n_pad`` trajectories."""

    def simulate(rep_key):
        sim_key, _ = jax.random.split(rep_key)
        return pad(design.simulate(sim_key, n, horizon), n_pad)

    return simulate


def estimate_fn(estimator: EstimatorSpec) -> Callable:
    """``(rep_key, data) -> EffectTable`` with the estimation key as in ``replication_fn``."""

    def estimate(rep_key, data) -> EffectTable:
        _, est_key = jax.random.split(rep_key)
        return EffectTable(*estimator.fn(est_key, data))

    return estimate


def chunk_fn(one: Callable, batch_size: int, name: str = "local") -> Callable:
    """``(cell_key, reps (batch_size,)) -> EffectTable with leading (batch_size,)``: one
    device's block; every device runs this same single-device program (``per_device``)."""

    def local(cell_key, reps):
        blocks = reps.reshape(-1, batch_size)
        block = jax.vmap(lambda r: one(jax.random.fold_in(cell_key, r)))
        out = jax.lax.map(block, blocks)
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)

    local.__name__ = local.__qualname__ = name  # names the compiled program
    return local


def data_chunk_fn(one: Callable, batch_size: int) -> Callable:
    """``chunk_fn`` for ``one(rep_key, data)``, with the block's data (leading axis
    ``batch_size``) computed by another program (padded cells)."""

    def estimate_chunk(cell_key, reps, data):
        blocks = reps.reshape(-1, batch_size)
        dblocks = jax.tree.map(lambda a: a.reshape((-1, batch_size) + a.shape[1:]), data)
        block = jax.vmap(lambda r, d: one(jax.random.fold_in(cell_key, r), d))
        out = jax.lax.map(lambda x: block(*x), (blocks, dblocks))
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)

    return estimate_chunk


_COMPILED: "collections.OrderedDict[tuple, Any]" = collections.OrderedDict()
_COMPILED_MAX = 32
_COMPILED_LOCK = threading.Lock()


def compiled_chunk_fn(design, estimator, n, h, mesh, batch_size, chunk_size, cell_key, sharding,
                      n_pad=None, xla_opt_level=None):
    """Compiles (or reuses, within this process) the chunk function of one grid cell.

    Returns ``(compiled, seconds spent compiling)``. The cache key holds the design and the
    estimator themselves when both are hashable; otherwise (e.g. the registered designs,
    frozen dataclasses holding jax arrays) their identities, with the objects kept alive in
    the cache entry so that an identity is never reused by another object.

    With ``n_pad`` (``n_buckets``): two programs, a simulation at ``n`` padded to ``n_pad``
    (one per ``n``) and the estimation at ``n_pad`` (shared by every ``n`` padded to
    ``n_pad``); ``compiled`` is their composition. ``xla_opt_level``: XLA's backend
    optimisation level (``None``: its default).
    """
    options = None if xla_opt_level is None else {"xla_backend_optimization_level": xla_opt_level}
    if n_pad is not None:
        def build_sim():
            one_sim = traced(simulate_fn(design, estimator.pad, n, h, n_pad), cell_key)
            program = PerDeviceProgram(chunk_fn(one_sim, batch_size, name="simulate_chunk"),
                                       cell_key, sharding, batch_size,
                                       program_id=_program_id("simulate", one_sim),
                                       out_tree=one_sim.out_tree, compiler_options=options)
            return program, one_sim.out_types()

        def build_est():
            types = (str(jax.tree.structure(sim_types)),
                     tuple((t.shape, str(t.dtype)) for t in jax.tree.leaves(sim_types)))
            parts = (n_pad, h, (tuple(cell_key.shape), str(cell_key.dtype)), types,
                     jax.config.jax_enable_x64)
            one_est = known_or_traced("estimate", design, estimator, parts,
                                      lambda: traced(estimate_fn(estimator), cell_key, sim_types),
                                      _EFFECT_TABLE_TREE)
            return PerDeviceProgram(data_chunk_fn(one_est, batch_size), cell_key, sharding,
                                    batch_size, data=(sim[0].out_info,),
                                    program_id=_program_id("estimate", one_est),
                                    out_tree=one_est.out_tree, compiler_options=options)

        sim, s1 = _cached(design, estimator, ("simulate", n, n_pad, h, xla_opt_level), mesh,
                          batch_size, chunk_size, build_sim)
        sim_types = sim[1]
        est, s2 = _cached(design, estimator, ("estimate", n_pad, h, xla_opt_level), mesh,
                          batch_size, chunk_size, build_est)
        return (lambda cell_key, reps: est(cell_key, reps, sim[0](cell_key, reps))), s1 + s2

    def build():  # always from the jaxpr: one route to the program, whoever computes the chunk
        one = traced_replication(design, estimator, n, h, cell_key)
        return PerDeviceProgram(chunk_fn(one, batch_size), cell_key, sharding, batch_size,
                                program_id=_program_id("replication", one),
                                out_tree=one.out_tree, compiler_options=options)

    return _cached(design, estimator, (n, h, xla_opt_level), mesh, batch_size, chunk_size, build)


def _lookup(cache, design, estimator, rest: tuple):
    """``(cache key, entry or None)``: keyed by the design and estimator themselves when
    hashable, else by their identities (an entry is returned only for the same objects)."""
    try:
        cache_key = (design, estimator) + rest
        hit = cache.get(cache_key)
    except TypeError:  # unhashable design or estimator: cache by identity
        cache_key = ("id", id(design), id(estimator)) + rest
        hit = cache.get(cache_key)
        if hit is not None and (hit[1] is not design or hit[2] is not estimator):
            hit = None
    if hit is None:
        return cache_key, None
    cache.move_to_end(cache_key)
    return cache_key, hit[0]


def _store(cache, cache_key, value, design, estimator) -> None:
    """Keeps ``value`` (with the objects, so an identity is never reused), at most
    ``_COMPILED_MAX`` entries."""
    cache[cache_key] = (value, design, estimator)
    while len(cache) > _COMPILED_MAX:
        cache.popitem(last=False)


def _cached(design, estimator, what: tuple, mesh, batch_size, chunk_size, build):
    """``(build(), seconds)`` for a program not yet in ``_COMPILED`` under ``what``, else
    ``(cached program, 0.0)``."""
    rest = what + (tuple(mesh.devices.flat), batch_size, chunk_size, jax.config.jax_enable_x64)
    with _COMPILED_LOCK:
        cache_key, hit = _lookup(_COMPILED, design, estimator, rest)
        if hit is not None:
            return hit, 0.0
    t0 = time.perf_counter()
    compiled = build()
    seconds = time.perf_counter() - t0
    with _COMPILED_LOCK:
        _store(_COMPILED, cache_key, compiled, design, estimator)
    return compiled, seconds


def check_table(table, chunk_size: int, n_est: int, n_eff: int, name: str) -> None:
    """``ValueError`` naming the estimator when its table is not ``(E, K)`` per replication."""
    for field in ("estimate", "se", "ci_low", "ci_high"):
        shape = np.shape(getattr(table, field))
        if shape != (chunk_size, n_est, n_eff):
            raise ValueError(f"estimator: {name!r} returned {field} of shape {shape[1:]} per "
                             f"replication, expected (E, K) = {(n_est, n_eff)} from its "
                             f"estimators and effects")
    if np.shape(table.status) != (chunk_size,):
        raise ValueError(f"estimator: {name!r} returned status of shape "
                         f"{np.shape(table.status)[1:]} per replication, expected ()")


def describe_devices(devices) -> str:
    """``"2 x cpu:cpu"``: the number of devices and their platforms and kinds."""
    kinds = sorted({f"{d.platform}:{d.device_kind}" for d in devices})
    return f"{len(devices)} x " + ",".join(kinds)


class ChunkComputer:
    """Computes chunks of one study on a list of local devices, compiling once per grid cell.

    Args:
      job: the study's :class:`ChunkJob`.
      devices: the local devices (the mesh of one compiled program).
    """

    def __init__(self, job: ChunkJob, devices):
        self.job = job
        self.devices = list(devices)
        self.mesh = Mesh(np.asarray(self.devices), (_AXIS,))
        self.rep_sharding = NamedSharding(self.mesh, P(_AXIS))
        self.key_sharding = NamedSharding(self.mesh, P())
        self.per_call = job.batch_size * len(self.devices)
        self.description = describe_devices(self.devices)
        self._programs: dict[int, tuple] = {}
        self._prepared: dict[int, float] = {}  # seconds spent by ``prepare`` per cell
        self._lock = threading.Lock()

    def prepare(self, tasks) -> None:
        """Traces and lowers the program of every cell of ``tasks`` now and lets XLA compile
        them side by side in the background (``per_device.deferred_compilation``), so the
        first chunk of a cell waits for its own compilation only. Only with two or more cells
        and cores; a cell whose program cannot be built here is left to ``compute``, which
        raises its error when it reaches that cell (after the chunks before it are stored).
        """
        firsts = {}
        for task in tasks:
            firsts.setdefault(task.cell, task)
        if len(firsts) < 2 or (os.cpu_count() or 1) < 2:
            return
        with job_precision(self.job.dtype), per_device.deferred_compilation():
            for task in firsts.values():
                try:
                    _, _, seconds = self._program(task)
                except Exception:  # noqa: BLE001 - raised again by ``compute`` at its turn
                    continue
                self._prepared[task.cell] = seconds

    def _program(self, task: ChunkTask):
        with self._lock:
            hit = self._programs.get(task.cell)
            if hit is not None:
                return hit + (0.0,)
            key = self.job.key()
            cell_key = jax.device_put(jax.random.fold_in(key, task.cell), self.key_sharding)
            # one compiled program per cell, of one block per device, whatever the chunk
            # size: a chunk is several calls of it, so its numbers cannot depend on it
            padded = self.job.padded_n
            compiled, seconds = compiled_chunk_fn(self.job.design, self.job.estimator, task.n,
                                                  task.horizon, self.mesh, self.job.batch_size,
                                                  self.per_call, cell_key, self.rep_sharding,
                                                  None if padded is None else padded[task.cell],
                                                  self.job.xla_opt_level)
            self._programs[task.cell] = (compiled, cell_key)
            return compiled, cell_key, seconds

    def compute(self, task: ChunkTask) -> tuple[np.ndarray, dict, float]:
        """Computes one chunk.

        Returns:
          ``(reps, chunk, compile seconds)``: the replication indices (int64, those below
          ``reps``), the chunk's ``estimate``/``se``/``ci_low``/``ci_high`` ``(R, E, K)``
          and ``status`` ``(R,)`` numpy arrays, and the seconds spent compiling (0 when the
          cell's program was already compiled in this process).
        """
        job, spec = self.job, self.job.estimator
        bs, n_dev = job.batch_size, len(self.devices)
        with job_precision(job.dtype):
            compiled, cell_key, seconds = self._program(task)
            seconds += self._prepared.pop(task.cell, 0.0)
            waited = per_device.waited_seconds()
            blocks = list(task.blocks)
            n_calls = -(-len(blocks) // n_dev)
            padded = blocks + [blocks[0]] * (n_calls * n_dev - len(blocks))
            idx = (np.asarray(padded, np.int32)[:, None] * bs
                   + np.arange(bs, dtype=np.int32)[None, :]).ravel()
            per_call = self.per_call
            outs = jax.device_get([
                compiled(cell_key, jax.device_put(idx[j * per_call:(j + 1) * per_call],
                                                  self.rep_sharding))
                for j in range(n_calls)])
            seconds += per_device.waited_seconds() - waited  # a deferred compilation's wait
        table = EffectTable(*(np.concatenate([np.asarray(o[f]) for o in outs])
                              for f in range(len(EffectTable._fields))))
        check_table(table, len(idx), len(spec.estimators), len(spec.effects), spec.name)
        real = len(blocks) * bs
        keep = np.flatnonzero(idx[:real] < job.reps)
        rep_ids = idx[keep].astype(np.int64)
        chunk = dict(estimate=table.estimate[keep], se=table.se[keep], ci_low=table.ci_low[keep],
                     ci_high=table.ci_high[keep],
                     status=np.asarray(table.status)[keep].astype(np.int32))
        return rep_ids, chunk, seconds
