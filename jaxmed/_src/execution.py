"""How jaxmed runs on the host: thread settings and the persistent compilation cache.

Threads. jaxmed's small linear systems are solved by ``jaxmed._src.small_linalg`` (LAPACK on
one system per call, the systems of a ``vmap`` batch one after another), so no batched LAPACK
kernel shares XLA's CPU thread pool and any ``vmap`` width runs (jaxlib 0.10.2's batched LAPACK
kernels deadlocked at width 8 on 2 cores). LAPACK goes through OpenBLAS, whose own threads
only slow down small solves and fight XLA's pool: :func:`configure_host_threads` sets
``OPENBLAS_NUM_THREADS=1`` (and the OpenMP/MKL equivalents) unless the user set them. It must
run before OpenBLAS is loaded, i.e. before ``jax`` is imported: the ``jaxmed`` command line
calls it first thing (from the package's import, ``hugepages.reexec_cli``, and again in
``cli.main``).

Library use. The LAPACK kernels of the pipeline's small solves (``small_linalg``) are SciPy's
OpenBLAS, which jaxlib loads at the first LAPACK call, after ``import jax``; with its default
threads a 38 x 38 triangular solve took milliseconds while XLA's own threads were busy, and one
replication at N = 1500, T = 25 ran 1.4-1.5x slower (measured in one script: 84-92 ms against
60-61 ms). So ``import jaxmed`` calls :func:`configure_library_threads`, which sets
``OPENBLAS_NUM_THREADS=1`` when the user has not set it and SciPy's linear algebra is not
loaded yet, after NumPy is loaded (NumPy's own OpenBLAS keeps its threads). SciPy's BLAS in
the rest of the process is then single-threaded, and so are child processes' BLAS libraries
(they inherit the variable). Set ``OPENBLAS_NUM_THREADS`` yourself before importing jaxmed, or
``JAXMED_BLAS_THREADS=keep``, to keep your own setting.

Compilation cache. :func:`enable_compilation_cache` turns on JAX's persistent compilation
cache in a per-user directory (``$JAXMED_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxmed/xla``,
else ``~/.cache/jaxmed/xla``), so that a second process running the same shapes compiles
nothing. The command line and ``jaxmed.study.run`` call it; ``JAXMED_NO_CACHE=1`` (or the
CLI's ``--no-cache``) turns it off, and a cache directory the user configured in JAX
(``jax_compilation_cache_dir``) is left as it is.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["configure_host_threads", "configure_library_threads", "enable_compilation_cache",
           "cache_dir", "cache_disabled", "enabled_cache_dir"]

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_enabled_dir: str | None = None


def configure_host_threads() -> None:
    """Sets single-threaded OpenBLAS/OpenMP/MKL (only variables the user has not set).

    Call before ``import jax`` (the libraries read them when they load).
    """
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")


def configure_library_threads() -> bool:
    """At ``import jaxmed``: single-threaded OpenBLAS for the LAPACK kernels that jaxlib loads
    lazily (module doc). Only when ``OPENBLAS_NUM_THREADS`` is unset, ``JAXMED_BLAS_THREADS``
    is not ``keep`` and ``scipy.linalg`` is not imported yet (then the variable would change
    nothing here). Imports NumPy first, so NumPy's own OpenBLAS is not affected. Returns
    whether it set the variable."""
    import sys

    import numpy  # noqa: F401  (loaded, with its BLAS threads, before the variable is set)

    if os.environ.get("JAXMED_BLAS_THREADS", "").strip().lower() == "keep":
        return False
    if "OPENBLAS_NUM_THREADS" in os.environ or "scipy.linalg" in sys.modules:
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return True


def cache_disabled() -> bool:
    """Whether ``JAXMED_NO_CACHE`` asks for no persistent compilation cache."""
    return os.environ.get("JAXMED_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no")


def cache_dir() -> str:
    """The per-user cache directory (``$JAXMED_CACHE_DIR`` or ``<user cache>/jaxmed/xla``)."""
    explicit = os.environ.get("JAXMED_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxmed", "xla")


CACHE_MAX_BYTES = 8 * 2 ** 30  # the persistent cache's size limit (least recently used evicted)


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turns on JAX's persistent compilation cache (idempotent); returns its directory.

    Does nothing and returns ``None`` when ``JAXMED_NO_CACHE`` is set. When JAX already has
    a ``jax_compilation_cache_dir`` (set by the user), that directory is kept and returned.
    The cache holds at most ``CACHE_MAX_BYTES`` (8 GiB; least recently used entries are
    evicted), and every read and write happens under a file lock, so processes sharing the
    directory (Dask workers, CLI subprocesses) never read an entry while it is being written.
    Entries are written for every compilation that takes at least 0.2 s (JAX's default
    threshold, 1 s, would skip the small chunk functions of short studies).

    Args:
      path: the directory; default :func:`cache_dir`.
    """
    global _enabled_dir
    if cache_disabled():
        return None
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        _enabled_dir = current
        return current
    path = os.path.abspath(path or cache_dir())
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        warnings.warn(f"jaxmed: no persistent compilation cache ({path}: {e}); set "
                      f"JAXMED_CACHE_DIR to a writable directory or JAXMED_NO_CACHE=1",
                      RuntimeWarning, stacklevel=2)
        return None
    _repair_access_times(path)
    jax.config.update("jax_compilation_cache_dir", path)
    # a size limit turns on JAX's LRU eviction and, with it, a file lock around every cache
    # read and write: without it a process could read an entry another process is still
    # writing (Dask workers, CLI subprocesses, parallel runs share the directory), and
    # deserialising a truncated executable crashed a test run (segmentation fault)
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _reset_jax_cache_state()
    _enabled_dir = path
    return path


def enabled_cache_dir() -> str | None:
    """The persistent compilation cache directory JAX uses now, or ``None`` (none configured,
    or ``JAXMED_NO_CACHE`` set)."""
    if cache_disabled():
        return None
    import jax

    return jax.config.jax_compilation_cache_dir or None


def _repair_access_times(path: str) -> int:
    """Gives every cache entry without an access-time file one (its modification time); returns
    how many it wrote.

    JAX's size-limited cache keeps ``<key>-atime`` next to each ``<key>-cache``, and before
    every write it reads the access times of all entries. An entry written without one (by a
    process with no size limit: an earlier jaxmed, or JAX configured by hand on the same
    directory) made every later write fail with a ``FileNotFoundError`` warning, so nothing
    new was ever cached there. Done under JAX's own lock file; best effort (a directory that
    cannot be read or written is left to JAX's warnings).
    """
    import filelock

    written = 0
    try:
        with filelock.FileLock(os.path.join(path, ".lockfile"), timeout=10):
            for name in os.listdir(path):
                if not name.endswith("-cache"):
                    continue
                atime = os.path.join(path, name[:-len("-cache")] + "-atime")
                if os.path.exists(atime):
                    continue
                stamp = os.stat(os.path.join(path, name)).st_mtime_ns
                with open(atime, "wb") as f:
                    f.write(int(stamp).to_bytes(8, "little"))
                written += 1
    except (OSError, filelock.Timeout):
        pass
    return written


def _reset_jax_cache_state() -> None:
    """JAX decides once per process, at its first compilation, whether the persistent cache is
    used; a compilation before the directory was set would leave it off for good. Reset that
    decision (private JAX state; harmless when absent)."""
    try:
        from jax._src import compilation_cache
    except ImportError:  # pragma: no cover - a JAX without the module
        return
    if getattr(compilation_cache, "_cache_checked", False) and not getattr(
            compilation_cache, "_cache_used", True):
        compilation_cache.reset_cache()
