"""Deferred compilation of the study's single-device programs (``per_device.deferred_compilation``,
``ChunkComputer.prepare``): a program lowered inside the context compiles in the background and
is waited for at its first call; its outputs are the eagerly compiled program's, and a study
whose cells were prepared this way matches one computed cell by cell."""

import os
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmed import study
from jaxmed._src.study import per_device

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign  # noqa: E402

jax.config.update("jax_enable_x64", True)


def _fn(cell_key, reps):
    keys = jax.vmap(lambda r: jax.random.fold_in(cell_key, r))(reps)
    return jnp.cumsum(jax.vmap(lambda k: jax.random.normal(k, (3,)))(keys), axis=1)


def test_deferred_program_equals_the_eager_one_and_waits_at_first_call():
    devices = jax.devices()[:1]
    sharding = NamedSharding(Mesh(np.asarray(devices), ("d",)), P("d"))
    key = jax.random.key(3)
    reps = jax.device_put(jnp.arange(4, dtype=jnp.int32), sharding)
    eager = per_device.PerDeviceProgram(_fn, key, sharding, 4)
    compiling = []
    with per_device.deferred_compilation():
        lazy = per_device.PerDeviceProgram(_fn, key, sharding, 4)
        compiling.append(lazy._pending is not None)
    # outside the context nothing is deferred (the setting is per thread and scoped)
    assert compiling == [True] and eager._pending is None
    before = per_device.waited_seconds()
    np.testing.assert_array_equal(np.asarray(lazy(key, reps)), np.asarray(eager(key, reps)))
    assert per_device.waited_seconds() >= before and lazy._pending is None
    # the context does not leak into other threads
    seen = []
    with per_device.deferred_compilation():
        t = threading.Thread(target=lambda: seen.append(getattr(per_device._DEFER, "on", False)))
        t.start()
        t.join()
    assert seen == [False]


def test_a_deferred_compilation_error_is_raised_at_the_first_call():
    devices = jax.devices()[:1]
    sharding = NamedSharding(Mesh(np.asarray(devices), ("d",)), P("d"))
    key = jax.random.key(3)
    with per_device.deferred_compilation():
        prog = per_device.PerDeviceProgram(_fn, key, sharding, 4,
                                           compiler_options={"not_an_xla_option": True})
    reps = jax.device_put(jnp.arange(4, dtype=jnp.int32), sharding)
    with pytest.raises(Exception, match="not_an_xla_option"):
        prog(key, reps)


def test_prepared_cells_give_the_cell_by_cell_results():
    # the grid's cells in one study (prepared: lowered first, compiled side by side) and the
    # first cell alone (one cell: nothing to prepare) give the same numbers bit for bit (a
    # cell's keys depend on its index, so only the first cell is comparable this way; the
    # runner tests check every cell against a numpy reference with preparation on)
    assert len(GRID) >= 2
    together = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, 21, batch_size=1, progress=False)
    alone = study.run(ToyDesign(), NOISE_SPEC, GRID[:1], REPS, 21, batch_size=1, progress=False)
    for f in ("estimate", "se", "ci_low", "ci_high", "status"):
        np.testing.assert_array_equal(np.asarray(getattr(together, f))[0],
                                      np.asarray(getattr(alone, f))[0])
