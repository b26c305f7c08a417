"""``jaxmed study`` options run for real in subprocesses against the real registry (tiny sizes):
``--share I/K`` and ``jaxmed merge`` (job arrays), ``--devices``, ``--float32``, ``--log-mse paper``.

The truth for the shares is a full single-process run of the same study: the merged store must
equal it bit for bit (the same keys, batch size and compiled block; see docs/study.md). The
float32 study is checked against its own stored replications recomputed into summaries in
plain numpy.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxmed import study

# five `jaxmed study` subprocesses, each compiling the long-term estimators: minutes on a
# loaded 2-core machine (12 min measured at load average 25), so not part of the CI run
pytestmark = pytest.mark.slow

STUDY = ["study", "longterm-s1", "--n", "20", "--horizon", "4", "--reps", "4", "--seed", "3",
         "--batch-size", "1", "--chunk-size", "1", "--no-progress"]
FIELDS = ("estimate", "se", "ci_low", "ci_high", "status")


def _jaxmed(args, devices=None, **kw):
    env = dict(os.environ)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.Popen([sys.executable, "-m", "jaxmed", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _finish(proc, timeout=900):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    procs = {
        "full": _jaxmed(STUDY + ["--out", str(base / "full")]),
        "share1": _jaxmed(STUDY + ["--share", "1/2", "--out", str(base / "share1")]),
        "share2": _jaxmed(STUDY + ["--share", "2/2", "--out", str(base / "share2")]),
        "dev2": _jaxmed(STUDY + ["--devices", "2", "--out", str(base / "dev2")], devices=2),
        "f32": _jaxmed(STUDY + ["--float32", "--log-mse", "paper", "--out", str(base / "f32")]),
    }
    results = {k: _finish(p) for k, p in procs.items()}
    for k, (rc, out, err) in results.items():
        assert rc == 0, f"{k}: exit {rc}\n{out}\n{err[-3000:]}"
    return base, results


def assert_identical(a, b):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert np.array_equal(x, y, equal_nan=True), f"{f} differs"


def test_shares_merge_to_the_full_study(runs):
    base, results = runs
    assert "share 1/2" in results["share1"][1] and "jaxmed merge" in results["share1"][1]
    s1, s2 = study.load(base / "share1"), study.load(base / "share2")
    # block b goes to share b % 2 (batch size 1: replication r to share r % 2)
    np.testing.assert_array_equal(s1.status[0] >= 0, [True, False, True, False])
    np.testing.assert_array_equal(s2.status[0] >= 0, [False, True, False, True])
    assert not (base / "share1" / "summary.json").exists()  # a share writes no summary
    rc, out, err = _finish(_jaxmed(["merge", str(base / "merged"), str(base / "share1"),
                                    str(base / "share2")]))
    assert rc == 0, err
    assert "4/4 replications" in out
    full = study.load(base / "full")
    assert (full.status >= 0).all()  # all present (status 1 = unstable fit at N = 20 is allowed)
    assert_identical(study.load(base / "merged"), full)
    merged = json.loads((base / "merged" / "summary.json").read_text())
    reference = json.loads((base / "full" / "summary.json").read_text())
    key = lambda c: (c["estimator"], c["effect"])  # noqa: E731
    ref_cells = {key(c): c for c in reference["cells"]}
    for cell in merged["cells"]:
        for col in ("bias", "sd", "mse", "coverage"):
            assert cell[col] == ref_cells[key(cell)][col] or (cell[col] is None
                                                               and ref_cells[key(cell)][col] is None)


def test_devices_flag_runs_on_two_devices(runs):
    """--devices 2 (two forced host devices): the same study; on the long-term design the
    per-device program rounds differently in the last digits (observed in an earlier version of
    this test: not bit-identical to one device), so the comparison has a tolerance."""
    base, results = runs
    two, full = study.load(base / "dev2"), study.load(base / "full")
    assert "2 x cpu" in results["dev2"][1]
    np.testing.assert_array_equal(two.status, full.status)
    for f in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(two, f), getattr(full, f), rtol=1e-9, atol=1e-12,
                                   equal_nan=True, err_msg=f)


def test_merge_refuses_another_study_with_one_line(runs):
    base, _ = runs
    rc, out, err = _finish(_jaxmed(["merge", str(base / "bad"), str(base / "share1"),
                                    str(base / "f32")]))
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "holds a different study" in lines[0] and "dtype" in lines[0]


def test_share_out_of_range_is_a_usage_error():
    rc, out, err = _finish(_jaxmed(STUDY + ["--share", "3/2", "--out", "unused"]), timeout=300)
    assert rc == 2 and "--share: expected I/K with integers 1 <= I <= K, got '3/2'" in err


def test_float32_study_and_the_paper_log_mse(runs):
    base, results = runs
    f32, f64 = study.load(base / "f32"), study.load(base / "full")
    assert f32.dtype == "float32" and "(float32)" in results["f32"][1]
    assert (f32.status >= 0).all()
    # float32 draws differ from float64 ones (a different sample), so the estimates are
    # compared through their spread: both studies estimate the same effects
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
