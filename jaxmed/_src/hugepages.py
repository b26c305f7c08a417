"""Transparent huge pages for the ``jaxmed`` command line's XLA buffers (issue 12).

On CPU, XLA allocates one temporary buffer per program run (about 120 MB for the mediation
pipeline at N = 1500, T = 25) with ``posix_memalign``; glibc serves an allocation that large
with a fresh ``mmap`` and returns it with ``munmap`` when the run ends, so every run
page-faults its temporaries in again, 4 KB at a time: about 30,000 faults and 50 ms of kernel
time per replication at that size, a third of its wall time. glibc's tunable
``glibc.malloc.hugetlb=1`` (glibc ≥ 2.35) marks such mappings for transparent huge pages
(2 MB), which removes almost all of those faults. Measured
(``benchmarks/hugepages_bench.py``, ``benchmarks/results/hugepages-20261201T112232Z.json``, three
alternated rounds of fresh processes on 2 cores): page faults per replication 30,239 → 224 at
N = 1500, T = 25 and 120,028 → 577 at T = 100; per replication 1.13x and 1.26x faster (medians
of the paired ratios), N = 100 unchanged (1.09x, within noise); compile time unchanged
(1.00x, 1.04x); the estimates bit-identical.

A tunable is read when the process starts, so the command line (``python -m jaxmed`` or the
``jaxmed`` script) re-executes itself once, before it imports JAX, with the tunable added to
``GLIBC_TUNABLES``, when all of these hold: Linux with glibc ≥ 2.35, transparent huge pages
enabled (``always`` or ``madvise`` in ``/sys/kernel/mm/transparent_hugepage/enabled``), the
tunable not already set, and ``JAXMED_HUGEPAGES`` not ``0``. Processes the command line
starts (Dask workers of ``--dask``) inherit the environment. Importing ``jaxmed`` as a
library never re-executes anything: set the variable yourself to get the same effect,
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python3 my_study.py``.

Not taken: ``MALLOC_ARENA_MAX=1`` with ``MALLOC_MMAP_MAX_=0`` also removes the faults (every
thread allocates from the main heap, which never returns the memory), but the single arena
made XLA's multi-threaded compilation 1.23–1.28x slower in the same benchmark (1.6x in a
first try), which cost more in a study of several N than the faster runs gained (N-grid:
170.5 s against 169.6 s).
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["TUNABLE", "SWITCH", "thp_mode", "hugepage_env", "launched_as_cli", "reexec_cli"]

TUNABLE = "glibc.malloc.hugetlb=1"
SWITCH = "JAXMED_HUGEPAGES"
_THP = "/sys/kernel/mm/transparent_hugepage/enabled"


def thp_mode(path: str = _THP) -> str | None:
    """The kernel's transparent-huge-page mode (``"always"``, ``"madvise"``, ``"never"``), or
    None where it cannot be read.

    >>> thp_mode("/no/such/file") is None
    True
    """
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def hugepage_env(environ, libc: tuple[str, str], thp: str | None,
                 system: str = sys.platform) -> dict | None:
    """The environment to re-execute with (``environ`` plus the tunable), or None when there is
    nothing to do (see the module doc for the conditions).

    >>> env = hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}, ("glibc", "2.36"),
    ...                    "madvise", "linux")
    >>> env["GLIBC_TUNABLES"]
    'glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1'
    >>> hugepage_env({}, ("glibc", "2.31"), "always", "linux") is None  # glibc too old
    True
    """
    if str(environ.get(SWITCH, "1")).strip() == "0" or not system.startswith("linux"):
        return None
    name, version = libc
    try:
        major_minor = tuple(int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return None
    if name != "glibc" or major_minor < (2, 35) or thp not in ("always", "madvise"):
        return None
    current = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in current:  # set already, by the user or by a first exec
        return None
    env = dict(environ)
    env["GLIBC_TUNABLES"] = f"{current}:{TUNABLE}" if current else TUNABLE
    return env


def launched_as_cli(argv=None, orig_argv=None, main_file=None) -> bool:
    """Whether this process is the ``jaxmed`` command line being started: ``python -m jaxmed``
    (while the package is imported, ``sys.argv[0]`` is ``"-m"``) or the ``jaxmed`` script.

    >>> launched_as_cli(["-m"], ["python3", "-m", "jaxmed", "designs"], None)
    True
    >>> launched_as_cli(["-m"], ["python3", "-m", "pytest"], None)
    False
    >>> launched_as_cli(["/usr/bin/jaxmed", "designs"], ["python3", "/usr/bin/jaxmed", "designs"],
    ...                 "/usr/bin/jaxmed")
    True
    """
    argv = sys.argv if argv is None else argv
    orig = list(getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv)
    if main_file is None:
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if argv and argv[0] == "-m":
        return any(a == "-m" and b == "jaxmed" for a, b in zip(orig, orig[1:])) or "-mjaxmed" in orig
    if argv and os.path.basename(str(argv[0])) in ("jaxmed", "jaxmed.exe"):
        return main_file is not None and os.path.abspath(main_file) == os.path.abspath(argv[0])
    return False


def reexec_cli(argv=None, force: bool = False) -> None:
    """Re-executes the command line with the tunable (``os.execve``; does not return then).

    Does nothing unless this process is the command line being started (``launched_as_cli``)
    or ``force``; then it first sets the command line's thread variables
    (``execution.configure_host_threads``: here they are set before JAX loads OpenBLAS), and
    re-executes where ``hugepage_env`` asks for it. ``argv``: the command to run (default: the
    original command line, ``sys.orig_argv``). An ``OSError`` from ``execve`` is ignored (the
    command then runs without the tunable).
    """
    if not (force or launched_as_cli()):
        return
    # the command line's single-threaded OpenBLAS/OpenMP defaults (``execution``), set here,
    # before JAX (and OpenBLAS with it) is first imported, and passed on to the new process
    from jaxmed._src.execution import configure_host_threads

    configure_host_threads()
    env = hugepage_env(os.environ, platform.libc_ver(), thp_mode())
    if env is None or not sys.executable:  # an embedded interpreter has no executable to run
        return
    argv = list(sys.orig_argv if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError:
        return
