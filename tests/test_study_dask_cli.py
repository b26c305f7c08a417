"""`jaxmed study --local-workers K` and `--scheduler ADDRESS`, run in a subprocess as users do.

Truth: the same command run without Dask, in one process (same batch size): the stores written
through Dask must hold the same numbers bit for bit.
"""

import os
import subprocess
import sys

import jax
import pytest

from jaxmed import study

sys.path.insert(0, os.path.dirname(__file__))
from _cli_run import subprocess_env  # noqa: E402
from _study_fixtures import assert_identical  # noqa: E402

distributed = pytest.importorskip("distributed")

ARGS = ["study", "longterm-s1", "--n", "20", "--horizon", "5", "--reps", "4", "--batch-size", "2",
        "--seed", "3", "--no-progress"]


def _env() -> dict:
    """The users' environment; every process and worker uses one compilation cache directory."""
    env = subprocess_env()
    if jax.config.jax_compilation_cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
    return env


def run_jaxmed(*args, cwd):
    return subprocess.run([sys.executable, "-m", "jaxmed", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The same command without Dask: one process, run as users run it."""
    cwd = tmp_path_factory.mktemp("in-process")
    proc = run_jaxmed(*ARGS, "--out", "one", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 1 x cpu:cpu" in proc.stdout
    res = study.load(cwd / "one")
    assert (res.status >= 0).all()  # complete
    return res


def test_local_workers_equal_the_in_process_study(tmp_path, in_process):
    proc = run_jaxmed(*ARGS, "--local-workers", "2", "--out", "lw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 computed now" in proc.stdout and "on dask, " in proc.stdout
    assert (tmp_path / "lw" / "summary.json").exists()
    assert_identical(study.load(tmp_path / "lw"), in_process)


@pytest.mark.slow  # CI time: 19 s; --local-workers runs the same CLI path on Dask
def test_scheduler_address_equals_the_in_process_study(tmp_path, in_process):
    env = _env()  # the workers share the compilation cache
    worker_env = {k: env[k] for k in ("JAX_COMPILATION_CACHE_DIR",
                                      "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "PYTHONPATH")}
    # one worker is enough here: what is tested is connecting to a running scheduler
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, env=worker_env) as cluster:
        proc = run_jaxmed(*ARGS, "--scheduler", cluster.scheduler_address, "--out", "sched",
                          cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "4 computed now" in proc.stdout and "on dask, " in proc.stdout
    assert_identical(study.load(tmp_path / "sched"), in_process)


def test_scheduler_and_local_workers_exclude_each_other(tmp_path):
    proc = run_jaxmed(*ARGS, "--local-workers", "2", "--scheduler", "tcp://127.0.0.1:8786",
                      cwd=tmp_path)
    assert proc.returncode == 2
    assert "not allowed with argument" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
