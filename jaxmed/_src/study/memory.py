"""How many replications a device computes at once: the default ``batch_size`` of a study.

The bytes of one replication are estimated from its jaxpr (the sum of the sizes of every
intermediate array: an upper bound that ignores buffer reuse), and ``batch_size = min(8 on
CPU or 256 on accelerators, fraction × free memory per device / bytes per replication)``
(free memory: ``device.memory_stats()`` on accelerators, ``MemAvailable`` shared among the
CPU devices otherwise). Tracing only; nothing is compiled.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import jax
import numpy as np

__all__ = ["replication_bytes", "free_bytes", "default_batch_size", "check_batch_size",
           "MAX_BATCH"]

_DEFAULT_MAX_BATCH = 8  # CPU: 8 replications per block already amortise the dispatch
_ACCEL_MAX_BATCH = 256  # GPU/TPU: wide blocks fill the device (memory permitting)
MAX_BATCH = 1024  # vmap widths above this gain nothing and multiply memory


def replication_bytes(fn: Callable, *args) -> int:
    """Upper bound on the memory of one call of ``fn(*args)``: every intermediate's bytes.

    Sums the sizes of all values in the jaxpr (sub-jaxprs of scans, loops and nested jits
    included once), i.e. ignores buffer reuse. Tracing only; nothing is compiled.

    >>> import jax.numpy as jnp
    >>> replication_bytes(lambda x: x * 2.0 + 1.0, jnp.zeros(10, jnp.float32))
    120
    """
    known = getattr(fn, "nbytes", None)  # a ``replication_identity.KnownReplication``
    if known is not None:
        return int(known)
    # a ``chunk_compute.TracedReplication`` carries its jaxpr: no second trace
    closed = fn.jaxpr if hasattr(fn, "jaxpr") else jax.make_jaxpr(fn)(*args)

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


def free_bytes(device) -> int:
    """Free memory of ``device``: its allocator's limit minus use, else a share of MemAvailable."""
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


def default_batch_size(replication_fns: Sequence[Callable], key, devices,
                       memory_fraction: float) -> int:
    """``min(cap, memory_fraction × free bytes / bytes of the largest replication)``, >= 1.

    Args:
      replication_fns: ``rep_key -> result`` of every grid cell (traced once each).
      key: a key to trace them with.
      devices: the devices that will compute (the smallest free memory counts).
      memory_fraction: share of free memory one block may use.
    """
    per_rep = max(replication_bytes(fn, key) for fn in replication_fns)
    free = min(free_bytes(d) for d in devices)
    widest = _DEFAULT_MAX_BATCH if all(d.platform == "cpu" for d in devices) else _ACCEL_MAX_BATCH
    return int(max(1, min(widest, memory_fraction * free // max(per_rep, 1))))


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int in ``1..MAX_BATCH``, or a ``ValueError`` naming it."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    if batch_size > MAX_BATCH:
        raise ValueError(f"batch_size: expected at most {MAX_BATCH} replications per device "
                         f"block, got {batch_size} (use a larger chunk_size for more "
                         f"replications per call)")
    return batch_size
