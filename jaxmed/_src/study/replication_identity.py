"""What a study's replication computes, told without tracing it, when its parts can be described.

A warm ``jaxmed study`` reads its lowered programs from disk (``program_cache``), but it used
to trace every replication first (about 0.35 s per cell for the mediation estimator on 2
cores, plus 0.1 s for the digest of its jaxpr), only to learn that jaxpr's digest, its
memory bound (``memory``) and its output structure. This module identifies a replication by
what it is made of instead, so that those three facts, recorded when it was first traced,
can be looked up in the next process.

``describe(obj)`` is a text that determines what ``obj`` computes, or ``None`` when it
cannot tell. It describes:

* numbers, strings, bytes, ``None``, and tuples, lists and dicts of describable values;
* numpy and concrete JAX arrays (dtype, shape and the SHA-256 of their bytes; key arrays by
  their implementation and key data), numpy dtypes, enums;
* dataclasses and named tuples of a class defined in jaxmed (class name and every field);
* functions defined in jaxmed (module, qualified name, defaults and what their closure
  holds), ``functools.partial``, bound methods and ``jax.custom_batching.custom_vmap``
  wrappers of describable parts, and functions and classes of ``jax`` and ``numpy`` by
  name.

Anything else (a user's own function, an object of another class, a tracer, a cycle deeper
than ``MAX_DEPTH``) makes the description ``None``, and the study traces the replication as
before. A jaxmed function's code is not described here: the key of the record also holds the
digest of every jaxmed source file and the JAX versions (``program_cache.program_key``), so
an edit of jaxmed, or an upgrade, is another key. What a description cannot see is mutable
module state that a jaxmed function reads at trace time (jaxmed has none that changes what is
traced; the JAX settings that do are in the key).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import threading
import types
from typing import Any, Callable

import jax
import numpy as np

__all__ = ["describe", "replication_identity", "KnownReplication", "known_or_traced", "MAX_DEPTH"]

MAX_DEPTH = 12
_SIMPLE = (bool, int, float, complex, str, bytes, type(None))
_NAMED_MODULES = ("jax", "jaxlib", "numpy")


class _Undescribable(Exception):
    pass


def _jaxmed_root() -> str:
    import jaxmed

    return os.path.dirname(os.path.realpath(jaxmed.__file__))


def _in_jaxmed(module: str | None) -> bool:
    return bool(module) and (module == "jaxmed" or module.startswith("jaxmed."))


def _named(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in _NAMED_MODULES


def _array(a) -> str:
    if isinstance(a, jax.core.Tracer):
        raise _Undescribable("a tracer")
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(a))
        a = jax.random.key_data(a)
    else:
        impl = ""
    arr = np.ascontiguousarray(np.asarray(a))
    return f"array({impl}{arr.dtype.str},{arr.shape},{hashlib.sha256(arr.tobytes()).hexdigest()})"


def _function(fn, depth: int, root: str) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "?")
    code = getattr(fn, "__code__", None)
    if code is None or not _in_jaxmed(module):
        if _named(module):  # jax.numpy.tanh, numpy.sum, ...: by name (versions in the key)
            return f"named({module}.{qualname})"
        raise _Undescribable(f"function {module}.{qualname}")
    if not os.path.realpath(code.co_filename).startswith(root + os.sep):
        raise _Undescribable(f"function {qualname} defined outside jaxmed")
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(_describe(cell.cell_contents, depth + 1, root))
        except ValueError:  # an empty cell
            cells.append("empty")
    defaults = _describe(fn.__defaults__, depth + 1, root)
    kwdefaults = _describe(fn.__kwdefaults__, depth + 1, root)
    return f"fn({module}.{qualname},{defaults},{kwdefaults},[{','.join(cells)}])"


def _describe(obj: Any, depth: int, root: str) -> str:
    if depth > MAX_DEPTH:
        raise _Undescribable("too deep")
    if isinstance(obj, enum.Enum):
        return f"enum({type(obj).__module__}.{type(obj).__qualname__}.{obj.name})"
    if isinstance(obj, _SIMPLE):
        return f"{type(obj).__name__}:{obj!r}"
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        return _array(obj)
    if isinstance(obj, np.dtype):
        return f"dtype({obj.str})"
    cls = type(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple
        if not _in_jaxmed(cls.__module__):
            raise _Undescribable(f"named tuple {cls.__qualname__}")
        items = ",".join(_describe(v, depth + 1, root) for v in obj)
        return f"{cls.__module__}.{cls.__qualname__}({items})"
    if isinstance(obj, (tuple, list)):
        items = ",".join(_describe(v, depth + 1, root) for v in obj)
        return f"{cls.__name__}({items})"
    if isinstance(obj, dict):
        items = sorted((_describe(k, depth + 1, root), _describe(v, depth + 1, root))
                       for k, v in obj.items())
        return f"dict({items})"
    if isinstance(obj, functools.partial):
        return (f"partial({_describe(obj.func, depth + 1, root)},"
                f"{_describe(obj.args, depth + 1, root)},{_describe(obj.keywords, depth + 1, root)})")
    if isinstance(obj, jax.custom_batching.custom_vmap):  # e.g. jaxmed's sequential_vmap
        return (f"custom_vmap({_describe(obj.fun, depth + 1, root)},"
                f"{_describe(obj.vmap_rule, depth + 1, root)})")
    if isinstance(obj, types.MethodType):
        return (f"method({_describe(obj.__func__, depth + 1, root)},"
                f"{_describe(obj.__self__, depth + 1, root)})")
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)) or (
            callable(obj) and _named(getattr(obj, "__module__", None))
            and not dataclasses.is_dataclass(obj)):
        return _function(obj, depth, root)
    if isinstance(obj, type):
        if _in_jaxmed(obj.__module__) or _named(obj.__module__):
            return f"class({obj.__module__}.{obj.__qualname__})"
        raise _Undescribable(f"class {obj.__qualname__}")
    if dataclasses.is_dataclass(obj):
        if not _in_jaxmed(cls.__module__):
            raise _Undescribable(f"dataclass {cls.__qualname__}")
        fields = ",".join(f"{f.name}={_describe(getattr(obj, f.name), depth + 1, root)}"
                          for f in dataclasses.fields(obj))
        return f"{cls.__module__}.{cls.__qualname__}({fields})"
    raise _Undescribable(f"object of type {cls.__module__}.{cls.__qualname__}")


def describe(obj: Any) -> str | None:
    """A text that determines what ``obj`` computes (see the module doc), or ``None``.

    >>> describe((1, 2.5, "a"))
    "tuple(int:1,float:2.5,str:'a')"
    >>> describe(lambda x: x) is not None   # a function defined outside jaxmed
    False
    """
    try:
        return _describe(obj, 0, _jaxmed_root())
    except _Undescribable:
        return None


def replication_identity(kind: str, design, estimator, *parts) -> str | None:
    """SHA-256 of what a study's ``kind`` of replication program is made of: the design's
    ``simulate``, the estimator's ``fn`` (and ``pad``) and ``parts`` (sizes, key type, …), or
    ``None`` when one of them cannot be described."""
    described = [describe(getattr(design, "simulate", None)), describe(estimator.fn),
                 describe(getattr(estimator, "pad", None)), describe(parts)]
    if any(d is None for d in described):
        return None
    return hashlib.sha256(repr((kind, described)).encode()).hexdigest()


class KnownReplication:
    """A replication told by its record: the digest of its jaxpr (``program_cache``), its
    memory bound (``memory.replication_bytes``) and its output structure, without tracing
    it. It is traced (once) only when its jaxpr is needed: to export a program that is not
    on disk. Otherwise it stands for a ``chunk_compute.TracedReplication``.
    """

    def __init__(self, trace: Callable[[], Any], digest: str, nbytes: int, out_tree,
                 traced=None):
        self._trace = trace
        self._traced = traced
        self._lock = threading.Lock()
        self.digest = digest
        self.nbytes = int(nbytes)
        self.out_tree = out_tree

    def traced(self):
        """The ``TracedReplication`` (traced now if it was not)."""
        with self._lock:
            if self._traced is None:
                from jaxmed._src.study import program_cache

                self._traced = self._trace()
                program_cache.counts["traced_later"] += 1
            return self._traced

    @property
    def jaxpr(self):
        return self.traced().jaxpr

    def __call__(self, *args) -> Any:
        return self.traced()(*args)

    def out_types(self):
        return self.traced().out_types()


def known_or_traced(kind: str, design, estimator, parts: tuple, trace: Callable[[], Any],
                    out_tree) -> Any:
    """A :class:`KnownReplication` from the record of this replication (``kind``, the design,
    the estimator and ``parts``) when one is kept and its output structure is ``out_tree``;
    otherwise ``trace()``, recorded for the next process (when lowered programs are kept on
    disk and the replication can be described) and returned as a ``KnownReplication`` that
    holds its trace."""
    from jaxmed._src.study import program_cache
    from jaxmed._src.study.memory import replication_bytes

    directory = program_cache.program_dir()
    identity = (None if directory is None
                else replication_identity(kind, design, estimator, *parts))
    if identity is not None:
        facts = program_cache.read_facts(identity, directory)
        if (facts is not None and facts.get("out_tree") == str(out_tree)
                and isinstance(facts.get("digest"), str) and isinstance(facts.get("bytes"), int)):
            return KnownReplication(trace, facts["digest"], facts["bytes"], out_tree)
    one = trace()
    if identity is None:
        return one
    digest, nbytes = program_cache.jaxpr_digest(one.jaxpr), replication_bytes(one)
    program_cache.write_facts(identity, directory, dict(digest=digest, bytes=nbytes,
                                                        out_tree=str(one.out_tree)))
    return KnownReplication(trace, digest, nbytes, one.out_tree, traced=one)
