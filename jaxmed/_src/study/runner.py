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
per device (the replication axis sharded over a 1-D mesh of the devices, each device
running the same single-device program, ``per_device.py``); a *chunk* of ``chunk_size`` replications (a multiple of ``batch_size ×
devices``) is as many calls of that same compiled program as it needs, whose results come
back to the host, are written atomically to ``out/chunks/`` and advance the progress bar.
Never are all replications materialised at once.

Bit-for-bit reproducibility. Replication ``r`` is always computed in vmap block
``r // batch_size``, slot ``r % batch_size``, by the same compiled program whatever the
chunk size (when the chunk size was part of the compiled program, a one-block chunk
compiled to a differently fused program than a several-block one: the long-term estimates
moved by up to 1e-13, and the issue reported mediation CIs moving by 1.8e-15). Hence results are **identical whatever
the chunk size** (tested on a toy and on the long-term design) **and the number of
devices** (tested on ``longterm-s1``, whose estimates moved by up to 1e-13 when 2 devices ran a
``shard_map`` program that XLA's SPMD pipeline fused differently; see ``per_device.py``). They do depend on ``batch_size`` (XLA may order floating
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

Dask. ``run(..., client=distributed.Client(...), out=DIR)`` submits every chunk as a task
to a Dask cluster; each worker compiles once per cell, writes its chunk into ``DIR`` and
returns a small record (``jaxmed._src.study.dask_executor``). Same keys, blocks and compiled
program: the results are bit-identical to a single-process run with the same batch size.

The pieces: ``plan`` (which chunks are missing), ``executors`` / ``dask_executor`` (who
computes them), ``chunk_compute`` (one chunk: the compiled program of a cell), ``chunk_store``
(files) and ``gather`` (the dense result arrays); ``run`` below only wires them together.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src import execution
from jaxmed._src.effect_table import EstimatorSpec
from jaxmed._src.precision import precision
from jaxmed._src.study import gather, plan
from jaxmed._src.study.catalog import truth_values
from jaxmed._src.study.chunk_compute import ChunkJob, traced_replication
from jaxmed._src.study.chunk_store import MANIFEST_FORMAT, ChunkStore
from jaxmed._src.study.executors import InProcessExecutor
from jaxmed._src.study.memory import check_batch_size, default_batch_size, replication_bytes
from jaxmed._src.study.n_buckets import estimator_pads, padded_sizes
from jaxmed._src.study.result import StudyResult

__all__ = ["run", "load", "make_grid", "replication_key", "replication_bytes"]


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


def _largest_cells(grid) -> list:
    """The cells that size the default batch: those with the most trajectory-steps N·T, the
    largest N and the largest T (a replication's memory grows with each; tracing every cell
    only to take the maximum cost about 0.3 s a cell, and a padded cell's full replication is
    never compiled)."""
    most_steps = max(grid, key=lambda c: (c[0] * c[1], c))
    return sorted({most_steps, max(grid), max(grid, key=lambda c: c[::-1])})


SMALL_STUDY_STEPS = 100_000  # trajectory-steps in all up to which "auto" compiles at level 0


def _xla_opt_level(level, grid, reps, padded_n, devices) -> int | None:
    """The backend optimisation level ``run`` compiles with (``None``: XLA's default)."""
    if level is None:
        return None
    if level != "auto":
        if level not in (0, 1, 2, 3):
            raise ValueError(f"xla_opt_level: expected 'auto', None or 0..3, got {level!r}")
        return int(level)
    sizes = padded_n or [None] * len(grid)
    steps = reps * sum((m or n) * h for (n, h), m in zip(grid, sizes))
    on_cpu = all(d.platform == "cpu" for d in devices)
    return 0 if on_cpu and steps <= SMALL_STUDY_STEPS else None


def _executor(client, devices, out, cache_dir):
    """The in-process executor on ``devices``, or a Dask executor when ``client`` is given."""
    if client is None:
        return InProcessExecutor(_resolve_devices(devices))
    if out is None:
        raise ValueError("out: a study on a Dask cluster needs a study directory (out=DIR) "
                         "that the workers write their chunks into")
    from jaxmed._src.study.dask_executor import DaskExecutor

    return DaskExecutor(client, devices, cache_dir=cache_dir)


def _padded_n(grid, estimator, n_buckets, reps=None) -> tuple | None:
    """Per cell, the padded number of trajectories (cells sharing an estimation program), or
    None for a cell run unpadded; None when no cell is padded."""
    sizes = padded_sizes(grid, n_buckets, getattr(estimator, "pad_group", None),
                         reps)  # validates
    if not estimator_pads(estimator):
        return None
    shared = collections.Counter((m, h) for m, (_, h) in zip(sizes, grid))
    out = tuple(m if shared[(m, h)] > 1 or m != n else None for m, (n, h) in zip(sizes, grid))
    return None if all(m is None for m in out) else out


def _manifest(design, spec, grid, reps, seed, key_data, batch_size, dtype) -> dict:
    import jaxmed

    settings = getattr(spec, "settings", None)
    extra = {} if not settings else dict(settings=[[k, v] for k, v in settings])
    return dict(**extra, format=MANIFEST_FORMAT, design=str(getattr(design, "name", type(design).__name__)),
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


def _progress_bar(progress, total: int, label: str):
    if progress is True and total:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=label, unit="rep")
    return None


def run(design, estimator: EstimatorSpec, grid, reps: int, key, *, out=None,
        chunk_size: int | None = None, batch_size: int | None = None, devices=None,
        progress: bool | Callable = True, dtype=np.float64, process: tuple[int, int] | None = None,
        memory_fraction: float = 0.25, client=None, n_buckets="auto",
        xla_opt_level="auto") -> StudyResult:
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
      client: a ``distributed.Client``: compute the chunks as Dask tasks on its workers
        (``out`` is required and must be reachable by every worker under the same path;
        ``devices`` is then the number of local devices per worker, default 1). ``progress``
        and the store behave as without it; ``compile_s`` sums the workers' compile times.

      n_buckets: ``"auto"`` (default), a list of sizes, or ``None``: for estimators with
        ``EstimatorSpec.pad`` (the mediation estimators), cells of several N are padded with
        absent trajectories to a few sizes so that the estimator compiles once per size, not
        once per N (the rule: ``jaxmed._src.study.n_buckets``; the data are simulated at the
        real N with the same keys; results equal the unpadded ones to rounding). The padded
        sizes are part of the study's identity (manifest ``padded_n``).
      xla_opt_level: XLA's backend optimisation level for the study's programs: ``"auto"``
        (default): 0 for a small study on CPU (at most ``SMALL_STUDY_STEPS`` = 100,000
        trajectory-steps in all, reps × Σ N·T over the cells at their padded N; compiling
        is then most of its time, and level 0 compiles the mediation estimator about 2x
        faster while its replications run about 3x slower), XLA's default otherwise;
        ``None``: XLA's default; or an int 0–3. The numbers of the two levels differ by
        rounding (about 1e-13 relative at most: no fused multiply-adds at level 0). A level other
        than the default is part of the study's identity (manifest ``xla_opt_level``; a
        resumed study keeps the stored one).

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
    cache = execution.enable_compilation_cache()
    grid = _check_grid(grid)
    if int(reps) != reps or reps < 1:
        raise ValueError(f"reps: expected a positive integer, got {reps!r}")
    reps = int(reps)
    padded_n = _padded_n(grid, estimator, n_buckets, reps)
    if not isinstance(estimator, EstimatorSpec):
        raise ValueError(f"estimator: expected an EstimatorSpec, got {type(estimator).__name__}")
    executor = _executor(client, devices, out, cache)
    if process is None:
        process = (jax.process_index(), jax.process_count())
    share = (int(process[0]), int(process[1]))
    if not 0 <= share[0] < share[1]:
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
            # traced once here; those cells' programs are built from these traces
            # (chunk_compute)
            batch_size = default_batch_size([traced_replication(design, estimator, n, h, key)
                                             for n, h in _largest_cells(grid)],
                                            key, executor.sizing_devices, memory_fraction)
        batch_size = check_batch_size(batch_size)
        chunk_size = plan.round_chunk_size(chunk_size, batch_size * executor.devices_per_call)

        manifest = _manifest(design, estimator, grid, reps, seed, key_data, batch_size, dt)
        if padded_n is not None:
            manifest["padded_n"] = [None if m is None else int(m) for m in padded_n]
        if stored is not None and xla_opt_level == "auto":  # a resumed study keeps its level
            opt_level = stored.get("xla_opt_level")
        else:
            opt_level = _xla_opt_level(xla_opt_level, grid, reps, padded_n,
                                       executor.sizing_devices)
        if opt_level is not None:
            manifest["xla_opt_level"] = opt_level
        if store is not None:
            stack.enter_context(store.lock(share))  # a second run of this share fails here
            store.clean_temporaries(share)          # .part files of a killed run of this share
            store.open(manifest)
            arrays = store.load(len(grid), reps, n_est, n_eff, corrupt="quarantine")
        else:
            arrays = gather.empty_arrays(len(grid), reps, n_est, n_eff)

        tasks = plan.plan_chunks(grid, arrays["done"], batch_size, chunk_size // batch_size, share)
        total = sum(len(t.reps(batch_size, reps)) for t in tasks)
        job = ChunkJob(design, estimator, reps, batch_size,
                       np.asarray(jax.random.key_data(key), np.uint32), str(jax.random.key_impl(key)),
                       np.dtype(dt).name, padded_n, opt_level)
        bar = _progress_bar(progress, total, f"{manifest['design']}/{estimator.name}")
        compile_s, n_computed, records = 0.0, 0, []
        try:
            for record in executor.execute(job, tasks, store, share):
                gather.add_record(arrays, record, store)
                records.append(record._replace(arrays=None))
                compile_s += record.compile_s
                n_computed += len(record.reps)
                if bar is not None:
                    n, h = grid[record.cell]
                    bar.set_postfix_str(f"cell {record.cell + 1}/{len(grid)}: N={n}, T={h}")
                    bar.update(len(record.reps))
                elif callable(progress):
                    progress(record.cell, record.reps)
        finally:
            if bar is not None:
                bar.close()
        if store is not None and client is not None:
            store.clean_temporaries(share)  # .part files of workers killed mid-write
    arrays.pop("done")
    n_devices, device = executor.describe(records)
    return StudyResult(
        design=manifest["design"], estimator=estimator.name, estimators=tuple(estimator.estimators),
        effects=tuple(estimator.effects), grid=tuple(grid), reps=reps, seed=seed, key_data=key_data,
        estimate=arrays["estimate"], se=arrays["se"], ci_low=arrays["ci_low"],
        ci_high=arrays["ci_high"], status=arrays["status"], truth=truth,
        wall_s=time.perf_counter() - t_start, compile_s=compile_s, n_computed=n_computed,
        batch_size=batch_size, chunk_size=chunk_size, devices=n_devices,
        device=device, dtype=np.dtype(dt).name, jax_version=jax.__version__)


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
