"""The Monte Carlo study runner: simulate + estimate, replication after replication.

How a study is computed
-----------------------
For grid cell ``c`` (an ``(n, horizon)`` pair, index ``c`` in ``grid``) and replication
``r``, the replication key is::

    rep_key = fold_in(fold_in(key, c), r)
    sim_key, est_key = jax.random.split(rep_key)
    data  = design.simulate(sim_key, n, horizon)
    table = estimator.fn(est_key, data)          # an EffectTable (E, K)

One replication is one unbatched function; replications are batched with ``vmap`` in
blocks of ``batch_size`` replications per device. One compiled call computes one block
per device (sharded over a 1-D mesh of all devices along the replication axis,
``shard_map``); a *chunk* of ``chunk_size`` replications (a multiple of ``batch_size ×
devices``) is as many calls of that same compiled program as it needs, whose results come
back to the host, are written atomically to ``out/chunks/`` and advance the progress bar.
Never are all replications materialised at once.

Bit-for-bit reproducibility. Replication ``r`` is always computed in vmap block
``r // batch_size``, slot ``r % batch_size``, by the same compiled program whatever the
chunk size (when the chunk size was part of the compiled program, a one-block chunk
compiled to a differently fused program than a several-block one: the long-term estimates
moved by up to 1e-13, and the issue reported mediation CIs moving by 1.8e-15). Hence results are **identical whatever
the chunk size** (tested on a toy and on the long-term design) **and the number of
devices** on the toy design (on the long-term design 2 devices were observed to differ from 1
in the last digits). They do depend on ``batch_size`` (XLA may order floating
point operations differently for different vmap widths, ~1e-15 relative in float64), on
the dtype and on the platform; all are recorded in the manifest, and a resumed study keeps
the stored ``batch_size``.

Memory. ``batch_size`` replications per device are live at once. Unless given, the
runner estimates the bytes of one replication from its jaxpr (the sum of the sizes of
every intermediate array, an upper bound that ignores buffer reuse) and takes
``batch_size = min(8 on CPU or 256 on accelerators, fraction × free memory per device /
bytes per replication)`` (free
memory: ``device.memory_stats()`` on accelerators, ``MemAvailable`` shared among the CPU
devices otherwise). The default ``chunk_size`` is one block per device per call.

Resume. With ``out=DIR`` each finished chunk is a file; a study that is interrupted (killed,
Ctrl-C, an exception) is resumed by calling ``run`` again with the same arguments: the
manifest is checked, finished replications are loaded, and only the missing ones are
computed (with any chunk size or number of devices: the numbers do not change).

Multi-host. Each process of a ``jax.distributed.initialize()`` job can run its own share of
the replications with no communication: ``run(..., process=(jax.process_index(),
jax.process_count()))`` (the default when ``jax.process_count() > 1``) computes the blocks
``b`` with ``b % count == index`` on the process's local devices, with the same fold_in
keys as a single-process run. Each process writes its chunk files (to a shared directory,
or to its own directory with the same manifest); ``jaxmed.study.merge(DIR, [DIR_1, ...])``
(``jaxmed merge``) combines the directories, checking their fingerprints. Then
``jaxmed.study.load(DIR)`` (or ``run`` with ``process=(0, 1)``, which computes only what is
missing) returns the complete result. The same split serves job arrays without
``jax.distributed`` (``jaxmed study --share i/k``).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import math
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmed._src import execution
from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.precision import precision
from jaxmed._src.study.catalog import truth_values
from jaxmed._src.study.chunk_store import MANIFEST_FORMAT, ChunkStore, STATUS_MISSING
from jaxmed._src.study.n_buckets import estimator_pads, padded_sizes
from jaxmed._src.study.result import StudyResult

__all__ = ["run", "load", "make_grid", "replication_key", "replication_bytes"]

_DEFAULT_MAX_BATCH = 8  # CPU: 8 replications per block already amortise the dispatch
_ACCEL_MAX_BATCH = 256  # GPU/TPU: wide blocks fill the device (memory permitting)
_MAX_BATCH = 1024  # vmap widths above this gain nothing and multiply memory
_AXIS = "rep"


def make_grid(n: int | Sequence[int], horizon: int | Sequence[int]) -> list[tuple[int, int]]:
    """The grid of (n, horizon) cells: the Cartesian product, n varying slowest.

    >>> make_grid([100, 500], 25)
    [(100, 25), (500, 25)]
    """
    ns = [n] if np.ndim(n) == 0 else list(n)
    hs = [horizon] if np.ndim(horizon) == 0 else list(horizon)
    return _check_grid([(a, b) for a in ns for b in hs])


def _check_grid(grid) -> list[tuple[int, int]]:
    cells = []
    for i, cell in enumerate(grid):
        if len(cell) != 2:
            raise ValueError(f"grid: cell {i} is {cell!r}, expected an (n, horizon) pair")
        n, h = cell
        if int(n) != n or int(h) != h or n < 1 or h < 1:
            raise ValueError(f"grid: cell {i} is {cell!r}, expected positive integers (n, horizon)")
        cells.append((int(n), int(h)))
    if not cells:
        raise ValueError("grid: expected at least one (n, horizon) cell")
    if len(set(cells)) != len(cells):
        raise ValueError(f"grid: duplicate cells in {cells}")
    return cells


def replication_key(key, cell: int, rep):
    """The key of replication ``rep`` of grid cell ``cell``: ``fold_in(fold_in(key, cell), rep)``."""
    return jax.random.fold_in(jax.random.fold_in(key, cell), rep)


def _replication_fn(design, estimator: EstimatorSpec, n: int, horizon: int) -> Callable:
    def one(rep_key) -> EffectTable:
        sim_key, est_key = jax.random.split(rep_key)
        data = design.simulate(sim_key, n, horizon)
        return EffectTable(*estimator.fn(est_key, data))

    return one


def _simulate_fn(design, pad: Callable, n: int, horizon: int, n_pad: int) -> Callable:
    """``rep_key -> data`` simulated at ``n`` (the key as in ``_replication_fn``), padded to
    ``n_pad`` trajectories."""

    def simulate(rep_key):
        sim_key, _ = jax.random.split(rep_key)
        return pad(design.simulate(sim_key, n, horizon), n_pad)

    return simulate


def _estimate_fn(estimator: EstimatorSpec) -> Callable:
    """``(rep_key, data) -> EffectTable`` with the estimation key as in ``_replication_fn``."""

    def estimate(rep_key, data) -> EffectTable:
        _, est_key = jax.random.split(rep_key)
        return EffectTable(*estimator.fn(est_key, data))

    return estimate


def replication_bytes(fn: Callable, *args) -> int:
    """Upper bound on the memory of one call of ``fn(*args)``: every intermediate's bytes.

    Sums the sizes of all values in the jaxpr (sub-jaxprs of scans, loops and nested jits
    included once), i.e. ignores buffer reuse. Tracing only; nothing is compiled.
    """
    closed = jax.make_jaxpr(fn)(*args)

    def size(aval) -> int:
        shape = getattr(aval, "shape", None)
        dtype = getattr(aval, "dtype", None)
        if shape is None or dtype is None:
            return 0
        try:
            itemsize = np.dtype(dtype).itemsize
        except TypeError:  # extended dtypes (keys)
            itemsize = 8
        return int(np.prod(shape, dtype=np.int64)) * itemsize

    def walk(jaxpr) -> int:
        total = sum(size(v.aval) for v in jaxpr.invars)
        for eqn in jaxpr.eqns:
            total += sum(size(v.aval) for v in eqn.outvars)
            for sub in _sub_jaxprs(eqn.params.values()):
                total += walk(sub)
        return total

    return walk(closed.jaxpr)


def _sub_jaxprs(values):
    for v in values:
        if hasattr(v, "eqns"):
            yield v
        elif hasattr(v, "jaxpr") and hasattr(v, "consts"):
            yield v.jaxpr
        elif isinstance(v, (tuple, list)):
            yield from _sub_jaxprs(v)


def _free_bytes(device) -> int:
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - not every backend implements memory_stats
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    n_cpu = max(1, sum(d.platform == "cpu" for d in jax.local_devices(backend="cpu")))
    return avail // n_cpu if device.platform == "cpu" else avail


def _as_key(key):
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key)), int(key)
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.dtype == jnp.uint32 and key.shape == (2,):  # legacy raw key
            return jax.random.wrap_key_data(key), None
        raise ValueError(f"key: expected a jax.random.key or an int seed, got {key.dtype}{key.shape}")
    if key.shape != ():
        raise ValueError(f"key: expected a single key, got shape {key.shape}")
    return key, None


def _resolve_devices(devices) -> list:
    if devices is None:
        return list(jax.local_devices())
    if isinstance(devices, (int, np.integer)):
        local = jax.local_devices()
        if not 1 <= devices <= len(local):
            raise ValueError(f"devices: expected 1..{len(local)} local devices, got {devices}")
        return list(local[:devices])
    devices = list(devices)
    if not devices:
        raise ValueError("devices: expected at least one device")
    return devices


def _chunk_fn(one: Callable, mesh: Mesh, batch_size: int, name: str = "local") -> Callable:
    """Jitted ``(cell_key, reps (chunk,)) -> EffectTable with leading (chunk,)`` (or any
    pytree ``one`` returns); ``name`` names the compiled program."""

    def local(cell_key, reps):
        blocks = reps.reshape(-1, batch_size)
        block = jax.vmap(lambda r: one(jax.random.fold_in(cell_key, r)))
        out = jax.lax.map(block, blocks)
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)

    local.__name__ = local.__qualname__ = name

    # check_vma=False: estimators are ordinary unbatched JAX code (fori_loop/scan carries
    # that start from constants); every replication is independent, so no collective or
    # varying-axis bookkeeping is needed.
    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(_AXIS)), out_specs=P(_AXIS),
                            check_vma=False)
    return jax.jit(sharded)


def _data_chunk_fn(one: Callable, mesh: Mesh, batch_size: int) -> Callable:
    """Jitted ``(cell_key, reps (chunk,), data (chunk, ...)) -> EffectTable``: ``_chunk_fn``
    for ``one(rep_key, data)`` of data computed by another program (padded cells)."""

    def estimate_chunk(cell_key, reps, data):
        blocks = reps.reshape(-1, batch_size)
        dblocks = jax.tree.map(lambda a: a.reshape((-1, batch_size) + a.shape[1:]), data)
        block = jax.vmap(lambda r, d: one(jax.random.fold_in(cell_key, r), d))
        out = jax.lax.map(lambda x: block(*x), (blocks, dblocks))
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)

    sharded = jax.shard_map(estimate_chunk, mesh=mesh, in_specs=(P(), P(_AXIS), P(_AXIS)),
                            out_specs=P(_AXIS), check_vma=False)
    return jax.jit(sharded)


_COMPILED: "collections.OrderedDict[tuple, Any]" = collections.OrderedDict()
_COMPILED_MAX = 32


def _compiled_chunk_fn(design, estimator, n, h, mesh, batch_size, chunk_size, cell_key, sharding,
                       n_pad=None):
    """Compiles (or reuses, within this process) the chunk function of one grid cell.

    Returns ``(compiled, seconds spent compiling)``. The cache key holds the design and the
    estimator themselves when both are hashable; otherwise (e.g. the registered designs,
    frozen dataclasses holding jax arrays) their identities, with the objects kept alive in
    the cache entry so that an identity is never reused by another object.

    With ``n_pad`` ≥ ``n`` (``n_buckets``): two programs, a simulation at ``n`` padded to
    ``n_pad`` (one per ``n``) and the estimation at ``n_pad`` (shared by every ``n`` padded
    to ``n_pad``); ``compiled`` is their composition.
    """
    if n_pad is not None:
        def build_sim():
            fn = _chunk_fn(_simulate_fn(design, estimator.pad, n, h, n_pad), mesh, batch_size,
                           name="simulate_chunk")
            template = jax.ShapeDtypeStruct((chunk_size,), jnp.int32, sharding=sharding)
            return fn.lower(cell_key, template).compile()

        sim, s1 = _cached(design, estimator, ("simulate", n, n_pad, h), mesh, batch_size,
                          chunk_size, build_sim)

        def build_est():
            fn = _data_chunk_fn(_estimate_fn(estimator), mesh, batch_size)
            template = jax.ShapeDtypeStruct((chunk_size,), jnp.int32, sharding=sharding)
            data = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
                                sim.out_info)
            return fn.lower(cell_key, template, data).compile()

        est, s2 = _cached(design, estimator, ("estimate", n_pad, h), mesh, batch_size, chunk_size,
                          build_est)
        return (lambda cell_key, reps: est(cell_key, reps, sim(cell_key, reps))), s1 + s2

    def build():
        fn = _chunk_fn(_replication_fn(design, estimator, n, h), mesh, batch_size)
        template = jax.ShapeDtypeStruct((chunk_size,), jnp.int32, sharding=sharding)
        return fn.lower(cell_key, template).compile()

    return _cached(design, estimator, (n, h), mesh, batch_size, chunk_size, build)


def _cached(design, estimator, what: tuple, mesh, batch_size, chunk_size, build):
    """``(build(), seconds)`` for a program not yet in ``_COMPILED`` under ``what``, else
    ``(cached program, 0.0)``."""
    rest = what + (tuple(mesh.devices.flat), batch_size, chunk_size, jax.config.jax_enable_x64)
    try:
        cache_key = (design, estimator) + rest
        hit = _COMPILED.get(cache_key)
    except TypeError:  # unhashable design or estimator: cache by identity
        cache_key = ("id", id(design), id(estimator)) + rest
        hit = _COMPILED.get(cache_key)
        if hit is not None and (hit[1] is not design or hit[2] is not estimator):
            hit = None
    if hit is not None:
        _COMPILED.move_to_end(cache_key)
        return hit[0], 0.0
    t0 = time.perf_counter()
    compiled = build()
    seconds = time.perf_counter() - t0
    if cache_key is not None:
        _COMPILED[cache_key] = (compiled, design, estimator)
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return compiled, seconds


def _check_table(table, chunk_size: int, n_est: int, n_eff: int, name: str) -> None:
    for field in ("estimate", "se", "ci_low", "ci_high"):
        shape = np.shape(getattr(table, field))
        if shape != (chunk_size, n_est, n_eff):
            raise ValueError(f"estimator: {name!r} returned {field} of shape {shape[1:]} per "
                             f"replication, expected (E, K) = {(n_est, n_eff)} from its "
                             f"estimators and effects")
    if np.shape(table.status) != (chunk_size,):
        raise ValueError(f"estimator: {name!r} returned status of shape "
                         f"{np.shape(table.status)[1:]} per replication, expected ()")


def _manifest(design, spec, grid, reps, seed, key_data, batch_size, dtype) -> dict:
    import jaxmed

    return dict(format=MANIFEST_FORMAT, design=str(getattr(design, "name", type(design).__name__)),
                estimator=spec.name, estimators=list(spec.estimators), effects=list(spec.effects),
                grid=[list(c) for c in grid], reps=int(reps), seed=seed, key_data=key_data,
                batch_size=int(batch_size), dtype=np.dtype(dtype).name,
                versions=dict(jax=jax.__version__, jaxlib=_version("jaxlib"), numpy=np.__version__,
                              jaxmed=getattr(jaxmed, "__version__", None)))


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _describe(devices) -> str:
    kinds = sorted({f"{d.platform}:{d.device_kind}" for d in devices})
    return f"{len(devices)} x " + ",".join(kinds)


def run(design, estimator: EstimatorSpec, grid, reps: int, key, *, out=None,
        chunk_size: int | None = None, batch_size: int | None = None, devices=None,
        progress: bool | Callable = True, dtype=np.float64, process: tuple[int, int] | None = None,
        memory_fraction: float = 0.25, n_buckets="auto") -> StudyResult:
    """Runs a Monte Carlo study: ``reps`` replications of simulate + estimate per grid cell.

    Replication ``r`` of cell ``c`` uses ``fold_in(fold_in(key, c), r)``, split into a
    simulation key and an estimation key (see the module docstring for the batching,
    sharding, memory, resume and multi-host rules). Results are identical whatever
    ``chunk_size`` and ``process``.

    Args:
      design: a design: ``name``, ``simulate(key, n, horizon) -> data`` and optionally
        ``truth()`` (see ``truth_values``).
      estimator: an ``EstimatorSpec`` whose ``fn(key, data)`` returns an ``EffectTable``.
      grid: a list of (n, horizon) cells (see ``make_grid``).
      reps: replications per cell.
      key: a ``jax.random.key`` or an int seed (recorded in the manifest either way).
      out: study directory for the chunk store (resumable); ``None`` keeps everything in
        memory.
      chunk_size: replications per device call and per chunk file; rounded up to a
        multiple of ``batch_size × len(devices)``. Default: one block per device.
      batch_size: replications vmapped together on one device (any width up to 1024
        runs). Default: from memory, at most 8 on CPU and 256 on accelerators; a resumed
        study keeps the stored value.
      devices: ``None`` (all local devices), a number of local devices, or a device list.
      progress: ``True`` for a tqdm bar, ``False`` for none, or a callable
        ``progress(cell, reps)`` called on the host after each chunk is finished (and
        stored), with the cell index and the replication indices of the chunk.
      dtype: ``float64`` (default) or ``float32``.
      process: ``(index, count)``: compute only blocks ``b`` with ``b % count == index``
        (multi-host). Default ``(jax.process_index(), jax.process_count())``.
      memory_fraction: fraction of free memory a block may use when choosing
        ``batch_size``.
      n_buckets: ``"auto"`` (default), a list of sizes, or ``None``: for estimators with
        ``EstimatorSpec.pad`` (the mediation estimators), cells of several N are padded with
        absent trajectories to a few sizes so that the estimator compiles once per size, not
        once per N (the rule: ``jaxmed._src.study.n_buckets``; the data are simulated at the
        real N with the same keys; results equal the unpadded ones to rounding).

    Returns:
      A ``StudyResult`` (replications of other processes have status -1).

    >>> import jax, jax.numpy as jnp
    >>> from jaxmed._src.effect_table import EffectTable, EstimatorSpec
    >>> class Normal:
    ...     name = "normal"
    ...     def simulate(self, key, n, horizon):
    ...         return jax.random.normal(key, (n, horizon))
    ...     def truth(self):
    ...         return {"mean": 0.0}
    >>> def mean(key, x):
    ...     m, se = x.mean(), x.mean(axis=1).std(ddof=1) / jnp.sqrt(x.shape[0])
    ...     e = jnp.reshape(m, (1, 1)); s = jnp.reshape(se, (1, 1))
    ...     return EffectTable(e, s, e - 1.96 * s, e + 1.96 * s, jnp.int32(0))
    >>> res = run(Normal(), EstimatorSpec("mean", ("sample",), ("mean",), mean),
    ...           make_grid([10, 20], 3), reps=4, key=0, progress=False)
    >>> res.estimate.shape
    (2, 4, 1, 1)
    """
    t_start = time.perf_counter()
    execution.enable_compilation_cache()
    grid = _check_grid(grid)
    n_pad = padded_sizes(grid, n_buckets)  # (validates n_buckets)
    if estimator_pads(estimator):  # cells sharing a padded size share one estimation program
        shared = collections.Counter((m, h) for m, (_, h) in zip(n_pad, grid))
        n_pad = [m if shared[(m, h)] > 1 or m != n else None for m, (n, h) in zip(n_pad, grid)]
    else:
        n_pad = [None] * len(grid)
    if int(reps) != reps or reps < 1:
        raise ValueError(f"reps: expected a positive integer, got {reps!r}")
    reps = int(reps)
    if not isinstance(estimator, EstimatorSpec):
        raise ValueError(f"estimator: expected an EstimatorSpec, got {type(estimator).__name__}")
    devices = _resolve_devices(devices)
    if process is None:
        process = (jax.process_index(), jax.process_count())
    p_index, p_count = (int(process[0]), int(process[1]))
    if not 0 <= p_index < p_count:
        raise ValueError(f"process: expected (index, count) with 0 <= index < count, got {process}")
    truth = truth_values(design) if callable(getattr(design, "truth", None)) else {}
    n_est, n_eff = len(estimator.estimators), len(estimator.effects)
    store = ChunkStore(out) if out is not None else None
    stored = store.read_manifest() if store is not None else None

    with contextlib.ExitStack() as stack:
        dt = stack.enter_context(precision(dtype))
        if dt == np.float32:  # float32 means float32 even where x64 is on globally
            stack.enter_context(jax.enable_x64(False))
        key, seed = _as_key(key)
        key_data = np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel().tolist()
        if batch_size is None and stored is not None and "batch_size" in stored:
            batch_size = int(stored["batch_size"])
        if batch_size is None:
            per_rep = max(replication_bytes(_replication_fn(design, estimator, n, h), key)
                          for n, h in grid)
            free = min(_free_bytes(d) for d in devices)
            widest = (_DEFAULT_MAX_BATCH if all(d.platform == "cpu" for d in devices)
                      else _ACCEL_MAX_BATCH)
            batch_size = int(max(1, min(widest, memory_fraction * free // max(per_rep, 1))))
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        batch_size = int(batch_size)
        if batch_size > _MAX_BATCH:
            raise ValueError(f"batch_size: expected at most {_MAX_BATCH} replications per device "
                             f"block, got {batch_size} (use a larger chunk_size for more "
                             f"replications per call)")
        per_call = batch_size * len(devices)
        if chunk_size is None:
            chunk_size = per_call
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
        chunk_size = per_call * math.ceil(int(chunk_size) / per_call)
        blocks_per_chunk = chunk_size // batch_size

        manifest = _manifest(design, estimator, grid, reps, seed, key_data, batch_size, dt)
        share = (p_index, p_count)
        if store is not None:
            stack.enter_context(store.lock(share))  # a second run of this share fails here
            store.clean_temporaries(share)          # .part files of a killed run of this share
            store.open(manifest)
            arrays = store.load(len(grid), reps, n_est, n_eff, corrupt="quarantine")
        else:
            shape = (len(grid), reps, n_est, n_eff)
            arrays = {k: np.full(shape, np.nan) for k in ("estimate", "se", "ci_low", "ci_high")}
            arrays["status"] = np.full((len(grid), reps), STATUS_MISSING, dtype=np.int32)
            arrays["done"] = np.zeros((len(grid), reps), dtype=bool)
        done = arrays.pop("done")

        n_blocks = math.ceil(reps / batch_size)
        todo = []  # per cell: the blocks this process must still compute
        for c in range(len(grid)):
            mine = [b for b in range(n_blocks) if b % p_count == p_index]
            todo.append([b for b in mine
                         if not done[c, b * batch_size:min(reps, (b + 1) * batch_size)].all()])
        total = sum(min(reps, (b + 1) * batch_size) - b * batch_size for t in todo for b in t)

        mesh = Mesh(np.asarray(devices), (_AXIS,))
        rep_sharding = NamedSharding(mesh, P(_AXIS))
        key_sharding = NamedSharding(mesh, P())
        bar = None
        if progress is True and total:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"{manifest['design']}/{estimator.name}", unit="rep")
        compile_s = 0.0
        n_computed = 0
        try:
            for c, (n, h) in enumerate(grid):
                if not todo[c]:
                    continue
                if bar is not None:
                    bar.set_postfix_str(f"cell {c + 1}/{len(grid)}: N={n}, T={h}")
                cell_key = jax.device_put(jax.random.fold_in(key, c), key_sharding)
                # one compiled program per cell, of one block per device, whatever chunk_size:
                # a chunk is several calls of it, so its numbers cannot depend on chunk_size
                compiled, seconds = _compiled_chunk_fn(design, estimator, n, h, mesh, batch_size,
                                                       per_call, cell_key, rep_sharding, n_pad[c])
                compile_s += seconds
                for start in range(0, len(todo[c]), blocks_per_chunk):
                    blocks = todo[c][start:start + blocks_per_chunk]
                    n_calls = math.ceil(len(blocks) / len(devices))
                    padded = blocks + [blocks[0]] * (n_calls * len(devices) - len(blocks))
                    idx = (np.asarray(padded, np.int32)[:, None] * batch_size
                           + np.arange(batch_size, dtype=np.int32)[None, :]).ravel()
                    outs = jax.device_get([
                        compiled(cell_key, jax.device_put(idx[j * per_call:(j + 1) * per_call],
                                                          rep_sharding))
                        for j in range(n_calls)])
                    table = EffectTable(*(np.concatenate([np.asarray(o[f]) for o in outs])
                                          for f in range(len(EffectTable._fields))))
                    _check_table(table, len(idx), n_est, n_eff, estimator.name)
                    real = len(blocks) * batch_size
                    keep = np.flatnonzero(idx[:real] < reps)
                    rep_ids = idx[keep].astype(np.int64)
                    chunk = dict(estimate=table.estimate[keep], se=table.se[keep],
                                 ci_low=table.ci_low[keep], ci_high=table.ci_high[keep],
                                 status=np.asarray(table.status)[keep].astype(np.int32))
                    if store is not None:
                        store.write_chunk(c, rep_ids, chunk, share=share)
                    for k, v in chunk.items():
                        arrays[k][c, rep_ids] = v
                    n_computed += len(rep_ids)
                    if bar is not None:
                        bar.update(len(rep_ids))
                    elif callable(progress):
                        progress(c, rep_ids)
        finally:
            if bar is not None:
                bar.close()

    return StudyResult(
        design=manifest["design"], estimator=estimator.name, estimators=tuple(estimator.estimators),
        effects=tuple(estimator.effects), grid=tuple(grid), reps=reps, seed=seed, key_data=key_data,
        estimate=arrays["estimate"], se=arrays["se"], ci_low=arrays["ci_low"],
        ci_high=arrays["ci_high"], status=arrays["status"], truth=truth,
        wall_s=time.perf_counter() - t_start, compile_s=compile_s, n_computed=n_computed,
        batch_size=batch_size, chunk_size=chunk_size, devices=len(devices),
        device=_describe(devices), dtype=np.dtype(dt).name, jax_version=jax.__version__)


def load(out, *, truth: dict[str, float] | None = None) -> StudyResult:
    """Reads a study directory (manifest and chunk files) without computing anything.

    Replications not in the store have status -1 and NaN values.
    """
    store = ChunkStore(out)
    m = store.read_manifest()
    if m is None:
        raise ValueError(f"out: no manifest.json in {store.path}")
    grid = tuple(tuple(int(v) for v in c) for c in m["grid"])
    arrays = store.load(len(grid), int(m["reps"]), len(m["estimators"]), len(m["effects"]))
    arrays.pop("done")
    return StudyResult(design=m["design"], estimator=m["estimator"],
                       estimators=tuple(m["estimators"]), effects=tuple(m["effects"]), grid=grid,
                       reps=int(m["reps"]), seed=m["seed"], key_data=m["key_data"],
                       truth=dict(truth or {}), batch_size=int(m["batch_size"]), dtype=m["dtype"],
                       jax_version=m.get("versions", {}).get("jax", ""), **arrays)
