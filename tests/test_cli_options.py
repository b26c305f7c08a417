"""``jaxmed study`` and ``jaxmed merge`` options run for real in subprocesses against the real
registry at a tiny size (longterm-s1, N = 20, T = 4, 4 replications, the nonstationary estimator
only): ``--share I/K`` and ``jaxmed merge`` (job arrays), ``--devices`` (2 forced host
devices), ``--float32``, ``--log-mse paper``, ``--no-cache``, ``--chunk-size``/``--batch-size``.

The truth for the two 1-device shares is the full study run on 2 devices: the merged store
must equal it bit for bit (the same keys, batch size and single-device program on every
device; see docs/study.md and ``study/per_device.py``). The float32 study's paper column is
recomputed from its stored replications in plain numpy (float32 accuracy on one sample:
test_float32_accuracy.py).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxmed import cli, study

sys.path.insert(0, os.path.dirname(__file__))
from _cli_run import subprocess_env  # noqa: E402

STUDY = ["study", "longterm-s1", "--n", "20", "--horizon", "4", "--reps", "4", "--seed", "3",
         "--batch-size", "1", "--chunk-size", "1", "--no-progress", "--estimators", "nonstationary"]
FIELDS = ("estimate", "se", "ci_low", "ci_high", "status")


def _jaxmed(args, devices=None, env=None, **kw):
    env = dict(env or subprocess_env())
    if devices:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    return subprocess.Popen([sys.executable, "-m", "jaxmed", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four `jaxmed study` processes: shares 1/2 and 2/2 (1 device each), the full study on 2
    devices, and a float32 study without the persistent cache (about 4 compilations)."""
    base = tmp_path_factory.mktemp("cli")
    # the float32 run uses no persistent compilation cache: JAXMED_CACHE_DIR must stay empty
    no_cache_env = {k: v for k, v in subprocess_env().items()
                    if k not in ("JAX_COMPILATION_CACHE_DIR",)}
    no_cache_env["JAXMED_CACHE_DIR"] = str(base / "cache")
    first = {
        "share1": _jaxmed(STUDY + ["--share", "1/2", "--out", str(base / "share1")]),
        "dev2": _jaxmed(STUDY + ["--devices", "2", "--out", str(base / "dev2")], devices=2),
        "f32": _jaxmed(STUDY + ["--float32", "--log-mse", "paper", "--no-cache",
                                "--out", str(base / "f32")], env=no_cache_env),
    }
    results = {"share1": _finish(first.pop("share1"))}
    # share 2 starts after share 1: it reads the compiled program from the cache
    second = _jaxmed(STUDY + ["--share", "2/2", "--out", str(base / "share2")])
    results.update({k: _finish(p) for k, p in first.items()})
    results["share2"] = _finish(second)
    for k, (rc, out, err) in results.items():
        assert rc == 0, f"{k}: exit {rc}\n{out}\n{err[-3000:]}"
    return base, results


def assert_identical(a, b):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert np.array_equal(x, y, equal_nan=True), f"{f} differs"


def test_shares_merge_to_the_full_study_on_two_devices(runs):
    """Two 1-device shares merged equal the full study run on 2 devices, bit for bit: one
    check of both claims (shares merge to a full run; the device count changes nothing; a
    shard_map program over 2 devices moved the nonstationary estimates by up to 1e-13, XLA's
    SPMD pipeline fused it differently, before every device ran the single-device program)."""
    base, results = runs
    assert "share 1/2" in results["share1"][1] and "jaxmed merge" in results["share1"][1]
    assert "2 x cpu" in results["dev2"][1]
    s1, s2 = study.load(base / "share1"), study.load(base / "share2")
    # block b goes to share b % 2 (batch size 1: replication r to share r % 2)
    np.testing.assert_array_equal(s1.status[0] >= 0, [True, False, True, False])
    np.testing.assert_array_equal(s2.status[0] >= 0, [False, True, False, True])
    assert not (base / "share1" / "summary.json").exists()  # a share writes no summary
    rc, out, err = _finish(_jaxmed(["merge", str(base / "merged"), str(base / "share1"),
                                    str(base / "share2")]))
    assert rc == 0, err
    assert "4/4 replications" in out
    full = study.load(base / "dev2")
    assert (full.status >= 0).all() and np.isfinite(full.estimate).all()
    assert_identical(study.load(base / "merged"), full)
    merged = json.loads((base / "merged" / "summary.json").read_text())
    reference = json.loads((base / "dev2" / "summary.json").read_text())
    key = lambda c: (c["estimator"], c["effect"])  # noqa: E731
    ref_cells = {key(c): c for c in reference["cells"]}
    assert len(merged["cells"]) == len(ref_cells) == 3
    for cell in merged["cells"]:
        for col in ("bias", "sd", "mse", "coverage"):
            assert cell[col] == ref_cells[key(cell)][col] or (cell[col] is None
                                                               and ref_cells[key(cell)][col] is None)


def test_merge_refuses_another_study_with_one_line(runs, capsys):
    base, _ = runs
    code = cli.main(["merge", str(base / "bad"), str(base / "share1"), str(base / "f32")])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "holds a different study" in lines[0] and "dtype" in lines[0]


def test_float32_study_and_the_paper_log_mse(runs):
    base, results = runs
    f32, f64 = study.load(base / "f32"), study.load(base / "dev2")
    assert f32.dtype == "float32" and "(float32)" in results["f32"][1]
    assert (f32.status >= 0).all()
    # float32 draws differ from float64 ones (a different sample), so only finiteness here;
    # float32 accuracy on one sample: test_float32_accuracy.py
    rows = list(f32.estimators).index("nonstationary")
    d32 = f32.estimate[0, f32.status[0] == 0, rows, 0]
    assert len(d32) >= 1 and np.isfinite(d32).all()
    assert f32.estimate.shape == f64.estimate.shape
    # the summary's paper column is mean(log err²) of the stored float32 estimates
    summary = json.loads((base / "f32" / "summary.json").read_text())
    assert summary["dtype"] == "float32"
    truth = summary["truth"]
    cell = next(c for c in summary["cells"]
                if c["estimator"] == "nonstationary" and c["effect"] == f32.effects[0])
    err = f32.estimate[0, f32.status[0] == 0, rows, 0] - truth[f32.effects[0]]
    np.testing.assert_allclose(cell["mean_log_sq_err"], np.mean(np.log(err ** 2)), rtol=1e-9)
    assert (base / "f32" / "figure.png").stat().st_size > 10_000
    # --no-cache: nothing written to the (otherwise used) jaxmed cache directory
    cache = base / "cache"
    assert not cache.exists() or not any(cache.iterdir())
