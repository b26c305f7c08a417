"""The traced and lowered chunk programs of a study, kept on disk between processes.

JAX's persistent compilation cache (``execution.enable_compilation_cache``) skips XLA's
compilation in a second process, but not the work before it: batching the replication's
jaxpr over the block (``vmap`` inside ``lax.map``) and lowering it to StableHLO took about
1 s per program for the mediation estimator on 2 cores, against 0.3 s for the cache hit
itself. This module keeps that lowered program as a ``jax.export`` artifact (StableHLO
bytecode in JAX's flatbuffer format, not a pickle): a later process that builds the same
program deserialises it (about 0.05 s) and compiles it, which is a persistent-cache hit.

What identifies a program. The key is a SHA-256 digest of

* the per-replication jaxpr(s) the program is built from, as text (every primitive and its
  parameters), with their constants (dtype, shape and bytes) and any Python callables among
  the parameters (e.g. the batching rules of ``custom_vmap``): their bytecode and constants,
  and what their closures hold (numbers and strings by value, functions recursively);
* how the program wraps them (``chunk_compute``'s block structure, ``batch_size``, the
  argument types);
* the jaxmed sources (every ``.py`` file of the installed package), the JAX and jaxlib
  versions, the platform and device kind, and the JAX settings that change a lowering
  (x64, default matmul precision, partitionable threefry).

So an edit of jaxmed, an upgrade of JAX, another design or estimator setting, another N or
T gives another key, and the program is traced again. (A warm process learns a replication's
jaxpr digest from the record ``replication_identity`` keeps, without tracing it, when the
design and estimator can be described; ``kept_program`` keeps whole calls, e.g.
``mediation_effects``'s, the same way.) What the key cannot see: Python state
that a batching rule reads without it reaching the jaxpr or the digest above (for example a
global variable, or an array in its closure, read by a ``custom_vmap`` rule of the user's
own). Turn the cache off (``JAXMED_NO_CACHE=1`` or the CLI's ``--no-cache``, which also turn
off XLA's cache) when such code changes.

Where. ``<persistent compilation cache directory>/jaxmed-programs/<key>.jaxexport``, used only
while the persistent cache is on and the ``flatbuffers`` package (JAX's serialisation of
exported programs) is importable. Files are written atomically (a temporary file, then
``os.replace``) and begin with the SHA-256 of the rest, so processes that share the directory
(Dask workers, parallel runs) never read a partial one and a damaged file is exported again.
At most ``MAX_FILES`` programs are kept (least recently used removed). A program that
``jax.export`` refuses (a host callback, a custom call it does not guarantee stable) is
lowered directly, as without the cache, and the refusal is remembered (``<key>.noexport``).
The numbers are those of the program lowered directly: the exported module is the same
StableHLO (tested bit for bit).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import tempfile
import threading
from typing import Any, Callable

import jax
import numpy as np

from jaxmed._src import execution

__all__ = ["program_dir", "program_key", "jaxpr_digest", "load_or_export", "read_facts",
           "write_facts", "MAX_FILES", "counts"]

SUFFIX = ".jaxexport"
REFUSED = ".noexport"  # marks a program that jax.export refused (empty file)
FACTS = ".facts.json"  # what tracing a replication told (``read_facts``)
SUBDIR = "jaxmed-programs"
MAX_FILES = 512  # about 0.2 MB each for the mediation estimator

_SOURCES: str | None = None
# per process: "read", "exported", "not_exportable", "known_not_exportable", "facts_read",
# "facts_written", "traced_later" (a ``KnownReplication`` traced to export its program)
counts: "collections.Counter[str]" = collections.Counter()
_LOCK = threading.Lock()


def program_dir() -> str | None:
    """The directory of exported programs, or ``None`` when they are not kept (no persistent
    compilation cache in this process, or no ``flatbuffers``)."""
    base = execution.enabled_cache_dir()
    if base is None:
        return None
    try:
        import flatbuffers  # noqa: F401  (jax.export's serialisation needs it)
    except ImportError:
        return None
    return os.path.join(base, SUBDIR)


def _sources_digest() -> str:
    """SHA-256 of every ``.py`` file of the jaxmed package (paths and contents), once per
    process."""
    global _SOURCES
    with _LOCK:
        if _SOURCES is None:
            import jaxmed

            root = os.path.dirname(os.path.abspath(jaxmed.__file__))
            h = hashlib.sha256()
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.endswith(".py"):
                        path = os.path.join(dirpath, name)
                        h.update(os.path.relpath(path, root).encode())
                        with open(path, "rb") as f:
                            h.update(f.read())
            _SOURCES = h.hexdigest()
        return _SOURCES


def _callables(jaxpr, out: list) -> None:
    """Appends a digest of every Python callable among the parameters of ``jaxpr``'s
    equations, recursing into sub-jaxprs."""
    from jax.extend import core as jcore

    for eqn in jaxpr.eqns:
        for value in eqn.params.values():
            values = value if isinstance(value, (tuple, list)) else (value,)
            for v in values:
                if isinstance(v, jcore.ClosedJaxpr):
                    _callables(v.jaxpr, out)
                elif isinstance(v, jcore.Jaxpr):
                    _callables(v, out)
                elif callable(v):
                    out.append(_callable_digest(v, 3))


_SIMPLE = (bool, int, float, complex, str, bytes, type(None))


def _code_digest(code, h) -> None:
    """Feeds a code object to ``h``: bytecode, names and constants (sets sorted, nested code
    recursed), not its file name or line numbers, so the digest is the same in every process."""
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            _code_digest(c, h)
        elif isinstance(c, frozenset):
            h.update(repr(sorted(map(repr, c))).encode())
        else:
            h.update(repr(c).encode())


def _callable_digest(fn, depth: int) -> bytes:
    """SHA-256 of a callable's code and of what its closure holds (simple values by value,
    callables recursively to ``depth`` levels, anything else by type)."""
    h = hashlib.sha256()

    def held(v):
        if isinstance(v, _SIMPLE) or (isinstance(v, tuple) and all(isinstance(x, _SIMPLE) for x in v)):
            h.update(repr(v).encode())
        elif callable(v) and depth > 0:
            h.update(_callable_digest(v, depth - 1))
        else:
            h.update(repr(type(v)).encode())

    if isinstance(fn, functools.partial):
        for v in fn.args + tuple(sorted(fn.keywords.items())):
            held(v)
        fn = fn.func
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object (e.g. JAX's ClosedRule): its class, and what it holds
        h.update(repr(type(fn)).encode())
        call = getattr(type(fn), "__call__", None)
        if hasattr(call, "__code__"):
            _code_digest(call.__code__, h)
        for name, v in sorted(getattr(fn, "__dict__", {}).items()):
            h.update(name.encode())
            held(v)
        return h.digest()
    _code_digest(code, h)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            held(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    return h.digest()


def jaxpr_digest(closed) -> str:
    """SHA-256 of a closed jaxpr: its text, its constants and the code of callables among its
    parameters."""
    h = hashlib.sha256(str(closed.jaxpr).encode())
    for c in closed.consts:
        a = np.asarray(jax.random.key_data(c) if jax.dtypes.issubdtype(
            getattr(c, "dtype", np.float64), jax.dtypes.prng_key) else c)
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    digests: list = []
    _callables(closed.jaxpr, digests)
    for d in digests:
        h.update(d)
    return h.hexdigest()


def program_key(*parts, device=None) -> str:
    """The file name stem of a program: ``parts`` (strings and numbers describing the program)
    plus the jaxmed sources, the JAX versions, the device and the JAX settings that change a
    lowering."""
    import jaxlib

    device = device or jax.devices()[0]
    env = (_sources_digest(), jax.__version__, jaxlib.__version__, device.platform,
           device.device_kind, bool(jax.config.jax_enable_x64),
           str(jax.config.jax_default_matmul_precision),
           bool(jax.config.jax_threefry_partitionable))
    return hashlib.sha256(repr((env, parts)).encode()).hexdigest()


def load_or_export(fn: Callable, arg_types: tuple, key: str, directory: str,
                   check: Callable[[], bool] | None = None) -> "jax.export.Exported | None":
    """The exported ``jax.jit(fn)`` at ``arg_types`` (flat: arrays and ``ShapeDtypeStruct``
    leaves in, a tuple of arrays out): read from ``directory/<key>.jaxexport`` when present and
    readable, else exported now and written there; ``None`` when ``fn`` cannot be exported
    (a host callback, or a custom call that ``jax.export`` does not accept; the caller then
    lowers ``fn`` itself, as without the cache), or when ``check()``, asked after a new
    export, says it must not be kept."""
    from jax import export

    path = os.path.join(directory, key + SUFFIX)
    refused = os.path.join(directory, key + REFUSED)
    if os.path.exists(refused):  # export failed before: do not pay for the attempt again
        counts["known_not_exportable"] += 1
        return None
    try:
        with open(path, "rb") as f:
            stored = f.read()
        digest, blob = stored[:32], stored[32:]
        if hashlib.sha256(blob).digest() == digest:
            exported = export.deserialize(bytearray(blob))
            _touch(path)
            counts["read"] += 1
            return exported
    except Exception:  # noqa: BLE001 - not there, or unreadable: export again
        pass
    try:
        exported = export.export(jax.jit(fn))(*arg_types)
        blob = bytes(exported.serialize())
    except Exception:  # noqa: BLE001 - not exportable (host callbacks, custom calls JAX does
        counts["not_exportable"] += 1  # not guarantee stable): the caller lowers it directly
        _write(directory, refused, b"")
        return None
    if check is not None and not check():
        counts["not_kept"] += 1
        return None
    _write(directory, path, hashlib.sha256(blob).digest() + blob)
    counts["exported"] += 1
    return exported


def _facts_path(directory: str, identity: str) -> str:
    return os.path.join(directory, program_key("facts", identity) + FACTS)


def read_facts(identity: str, directory: str) -> dict | None:
    """The facts recorded by ``write_facts`` for ``identity`` (a
    ``replication_identity``) under this process's jaxmed sources, JAX versions, device and
    settings, or ``None`` (none recorded, or a damaged record)."""
    path = _facts_path(directory, identity)
    try:
        with open(path, "rb") as f:
            stored = f.read()
    except OSError:
        return None
    digest, blob = stored[:32], stored[32:]
    if hashlib.sha256(blob).digest() != digest:
        return None
    try:
        facts = json.loads(blob.decode())
    except ValueError:
        return None
    if not isinstance(facts, dict):
        return None
    _touch(path)
    counts["facts_read"] += 1
    return facts


def write_facts(identity: str, directory: str, facts: dict) -> None:
    """Records ``facts`` (JSON: numbers and strings) for ``identity``, atomically and
    checksummed as the programs are."""
    blob = json.dumps(facts, sort_keys=True).encode()
    _write(directory, _facts_path(directory, identity), hashlib.sha256(blob).digest() + blob)
    counts["facts_written"] += 1


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _write(directory: str, path: str, blob: Any) -> None:
    """Writes ``blob`` to ``path`` atomically and keeps at most ``MAX_FILES`` programs (best
    effort: a directory that cannot be written only means the program is exported again)."""
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _evict(directory)
    except OSError:
        pass


def _evict(directory: str) -> None:
    entries = []
    for name in os.listdir(directory):
        if name.endswith((SUFFIX, REFUSED, FACTS)) and not name.startswith(".tmp-"):
            path = os.path.join(directory, name)
            try:
                entries.append((os.stat(path).st_mtime_ns, path))
            except OSError:
                pass
    entries.sort()
    for _, path in entries[:max(0, len(entries) - MAX_FILES)]:
        try:
            os.unlink(path)
        except OSError:
            pass
