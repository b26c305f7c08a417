"""A jitted function called through its lowered program kept on disk, without tracing it.

``program_cache`` keeps a study's chunk programs; this module does the same for one call of
a library function, e.g. ``mediation_effects``'s ``mediation_core`` in ``jaxmed estimate``:
a warm ``jaxmed estimate`` spent about 1 s tracing and lowering the pipeline before XLA's
cache hit. Here the lowered program (a ``jax.export`` artifact in the program directory) is
keyed by a description of everything that is not an argument array (``describe``: the
function's settings, the argument pytree's structure) and by the arguments' shapes and dtypes,
plus what every program key holds (jaxmed sources, JAX versions, device, settings). A process
that finds it calls it directly; otherwise it is exported once (which traces and lowers, as
``jax.jit`` would) and written for the next process.

Used only while lowered programs are kept (``program_cache.program_dir()``: the persistent
compilation cache is on, as in the command line and ``jaxmed.study.run``) and when the
settings can be described; otherwise the caller uses ``jax.jit`` as before. Within a process
each program is read once and reused. The numbers are those of the jitted function: the
exported module is the StableHLO ``jax.jit`` lowers (tested bit for bit).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable

import jax

from jaxmed._src.study import program_cache
from jaxmed._src.study.replication_identity import describe

__all__ = ["kept_call"]

_PROGRAMS: "collections.OrderedDict[str, Callable]" = collections.OrderedDict()  # per process
_MAX_PROGRAMS = 32  # least recently used dropped (each holds a compiled program)
_LOCK = threading.Lock()


def kept_call(name: str, fn: Callable, settings: Any, args: tuple, out_tree) -> Any:
    """``fn(*args)`` through its kept program, or ``None`` when no program can be kept (the
    caller then calls ``jax.jit(fn)(*args)`` itself).

    Args:
      name: names the program (its logs and key). It must tell ``fn``'s code apart from the
        other kept programs': the key holds the name, the settings and jaxmed's sources, not
        the code of ``fn`` itself.
      fn: ``(*args) -> pytree`` with output structure ``out_tree``; everything it depends on
        besides ``args``' arrays must be described by ``settings``.
      settings: what ``fn`` computes with besides the arrays (e.g. static arguments and
        configurations); ``describe``-able, else ``None`` is returned.
      args: the arguments, a tuple of pytrees of arrays (or arrays and numbers).
      out_tree: the pytree structure of ``fn``'s output. A program whose traced output has
        another structure is not kept.
    """
    directory = program_cache.program_dir()
    if directory is None:
        return None
    leaves, in_tree = jax.tree.flatten(args)
    described = describe(settings)
    if described is None:
        return None
    try:  # as ``jax.jit`` sees them: a Python number is a weakly typed scalar
        avals = [jax.typeof(x) for x in leaves]
    except TypeError:
        return None
    types = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in avals)
    key = program_cache.program_key("kept", name, described, str(in_tree),
                                    [(t.shape, str(t.dtype), t.weak_type) for t in types],
                                    str(out_tree))
    with _LOCK:
        call = _PROGRAMS.get(key)
        if call is not None:
            _PROGRAMS.move_to_end(key)
    if call is None:
        traced_tree = []

        def flat(*flat_args):
            out = fn(*jax.tree.unflatten(in_tree, flat_args))
            traced_tree.append(jax.tree.structure(out))
            return tuple(jax.tree.leaves(out))

        flat.__name__ = flat.__qualname__ = name
        exported = program_cache.load_or_export(flat, types, key, directory,
                                                check=lambda: all(t == out_tree for t in traced_tree))
        if exported is None or len(exported.out_avals) != out_tree.num_leaves:
            return None

        def named(*flat_args):
            return exported.call(*flat_args)

        named.__name__ = named.__qualname__ = name
        call = jax.jit(named)
        with _LOCK:
            _PROGRAMS[key] = call
            while len(_PROGRAMS) > _MAX_PROGRAMS:
                _PROGRAMS.popitem(last=False)
    return jax.tree.unflatten(out_tree, call(*leaves))
