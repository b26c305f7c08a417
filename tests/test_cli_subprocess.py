"""Every jaxmed subcommand run as a user runs it: ``python3 -m jaxmed ...`` in a subprocess,
against the real design registry and estimators, compared with the library's numbers.

The README quickstart runs at a tiny size (semi-synthetic, N = 50, T = 10, 2 replications);
the user's CSV has the same shape (50 ids of 11 rows: T = 10 steps), so the in-process
reference computations share one compilation. Runs are module-scoped fixtures.
"""

import json
import os
import sys

import jax
import numpy as np
import pandas as pd
import pytest

import jaxmed
from jaxmed import cli, study
from jaxmed._src.status import mediation_status_text

sys.path.insert(0, os.path.dirname(__file__))
from _cli_run import run_jaxmed  # noqa: E402

N, ROWS = 50, 11  # ids x rows per id; the CLI builds T = ROWS - 1 = 10 steps
COLUMNS = dict(s0="s", m0="m1", m1="m2", action="a", reward="r", time="t")
ESTIMATE = ["estimate", "data.csv", "--state", "s", "--mediator", "m1,m2", "--action", "a",
            "--reward", "r", "--id", "id", "--time", "t", "--target-policy", "logistic:0.7"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def user_csv(workdir):
    design = jaxmed.sim.get_design("semi-synthetic")
    with jaxmed.precision():
        data = design.simulate(jax.random.key(0), N, ROWS)
    df = jaxmed.trajectories_to_dataframe(data).drop(columns=["next_s0"]).rename(columns=COLUMNS)
    df.to_csv(workdir / "data.csv", index=False)
    return df


@pytest.fixture(scope="module")
def library(user_csv):
    """The library's result on the CSV's data, with the policy spelled as on the command line."""
    data = jaxmed.trajectories_from_dataframe(user_csv, state="s", mediator=["m1", "m2"],
                                              action="a", reward="r", id="id", time="t")
    assert (data.n_trajectories, data.horizon) == (N, ROWS - 1)
    res = jaxmed.mediation_effects(data, "logistic:0.7", "constant:0", key=jax.random.key(0))
    same = jaxmed.mediation_effects(data, jaxmed.policies.semi_synthetic_target_policy(),
                                    jaxmed.policies.always_control(), key=jax.random.key(0))
    np.testing.assert_array_equal(res.estimate, same.estimate)  # the spelling is that policy
    return res


@pytest.fixture(scope="module")
def estimate_run(workdir, user_csv):
    return run_jaxmed(*ESTIMATE, "--out", "effects.json", cwd=workdir)


@pytest.fixture(scope="module")
def quickstart(workdir):
    """The README quickstart at a tiny size."""
    return run_jaxmed("study", "semi-synthetic", "--n", N, "--horizon", ROWS - 1, "--reps", "2",
                      "--seed", "0", "--out", "runs/quickstart", cwd=workdir)


def test_designs_lists_the_registry(workdir):
    proc = run_jaxmed("designs", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[:2] for line in proc.stdout.splitlines()]
    assert [r[0] for r in rows] == list(jaxmed.sim.list_designs())
    assert all(kind == jaxmed.sim.get_design(name).kind for name, kind in rows)


def test_estimate_prints_and_writes_the_librarys_numbers(workdir, estimate_run, library):
    assert estimate_run.returncode == 0, estimate_run.stderr
    doc = json.loads((workdir / "effects.json").read_text())
    ref = library.to_frame()
    got = pd.DataFrame(doc["effects"])
    assert list(got["estimator"]) == list(ref["estimator"])
    assert list(got["effect"]) == list(ref["effect"])
    for col in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(got[col].to_numpy(float), ref[col].to_numpy(float),
                                   rtol=1e-9, atol=1e-12, err_msg=col)
    status = int(library.diagnostics.status)
    assert doc["status"] == status and doc["status_text"] == mediation_status_text(status)
    assert (doc["n_trajectories"], doc["horizon"], doc["observed_steps"]) == (N, ROWS - 1,
                                                                              N * (ROWS - 1))
    dm = got[got["estimator"] == "DM"]
    assert dm["se"].isna().all() and dm["note"].str.startswith("no SE: DM has no").all()
    assert (got[got["estimator"] == "MR"]["note"] == "").all()
    assert doc["undefined"]["MIS2"] == ["DDE", "DME", "ATE"]
    out = estimate_run.stdout
    assert out.startswith(f"{N} trajectories, T = {ROWS - 1} steps ({N * (ROWS - 1)} observed; "
                          f"each id's last row gives only the final next state")
    assert f"status {status}: {mediation_status_text(status)}" in out
    assert "Effects are long-run averages per step" in out
    assert "(a) no SE: DM has no naive cluster SE; `--se ij`" in out
    assert "SE: naive trajectory-cluster SE" in out
    assert "not defined, left out: MIS2 DDE/DME/ATE" in out
    mr = next(line.split() for line in out.splitlines() if line.split()[:2] == ["MR", "IDE"])
    assert float(mr[2]) == pytest.approx(float(ref.estimate.iloc[0]), abs=5e-5)


def test_estimate_out_csv(workdir, library, capsys):
    """Same run in-process (compiled already) writing CSV: the JSON's rows plus the status."""
    path = workdir / "effects.csv"
    argv = [a if a != "data.csv" else str(workdir / "data.csv") for a in ESTIMATE]
    assert cli.main(argv + ["--out", str(path)]) == 0
    capsys.readouterr()
    got = pd.read_csv(path)
    ref = library.to_frame()
    np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=1e-9)
    np.testing.assert_allclose(got["se"], ref["se"], rtol=1e-9)
    status = int(library.diagnostics.status)
    assert (got["status"] == status).all()
    assert (got["status_text"] == mediation_status_text(status)).all()


def test_estimate_with_the_sandwich_se(workdir, user_csv, library, capsys):
    """``--se ij``: the library's IJ SE (``MediationConfig(se_method="ij")``, itself checked
    against finite differences and the bootstrap in test_mediation_influence.py) for every
    defined cell, DM included; the naive SE stays in the default run; the JSON says which."""
    path = workdir / "effects_ij.json"
    argv = [a if a != "data.csv" else str(workdir / "data.csv") for a in ESTIMATE]
    assert cli.main(argv + ["--se", "ij", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "SE: infinitesimal-jackknife sandwich SE through the whole pipeline" in out
    doc = json.loads(path.read_text())
    assert doc["se"] == "ij" and doc["se_meaning"].startswith("SE: infinitesimal-jackknife")
    data = jaxmed.trajectories_from_dataframe(user_csv, state="s", mediator=["m1", "m2"],
                                              action="a", reward="r", id="id", time="t")
    ref = jaxmed.mediation_effects(data, "logistic:0.7", "constant:0", key=jax.random.key(0),
                                   config=jaxmed.MediationConfig(se_method="ij"))
    got, want = pd.DataFrame(doc["effects"]), ref.to_frame()
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["se"], want["se"], rtol=1e-9)
    assert np.isfinite(got["se"]).all() and (got["note"] == "").all()  # DM has an SE now
    # the point estimates are the default run's; the SEs are not the naive ones
    np.testing.assert_allclose(got["estimate"], library.to_frame()["estimate"], rtol=1e-9,
                               atol=1e-12)
    mr = (got["estimator"] == "MR").to_numpy()
    naive = library.to_frame()["se"].to_numpy(float)[mr]
    assert np.all(np.abs(got["se"].to_numpy(float)[mr] / naive - 1) > 1e-3)


def test_se_option_is_refused_for_long_term_designs(workdir, capsys):
    assert cli.main(["study", "longterm-s1", "--n", "20", "--reps", "1", "--se", "ij",
                     "--out", str(workdir / "runs" / "lt_ij")]) == 2
    err = capsys.readouterr().err
    assert "--se: applies to the mediation designs; 'longterm-s1' is a longterm design" in err
    design = jaxmed.sim.get_design("semi-synthetic")
    assert study.default_estimator(design, se_method="ij").name == "mediation-default+ij"
    assert study.default_estimator(design, se_method="cluster").name == "mediation-default"
    drift = study.default_estimator(jaxmed.sim.get_design("semi-synthetic-drift"), se_method="ij")
    assert drift.name == "mediation-time-compare+ij"
    with pytest.raises(ValueError, match="se_method: applies to the built-in mediation"):
        study.default_estimator(jaxmed.sim.get_design("longterm-s1"), se_method="ij")


def test_quickstart_study_on_a_mediation_design(workdir, quickstart, library):
    assert quickstart.returncode == 0, quickstart.stderr
    out = workdir / "runs" / "quickstart"
    doc = json.loads((out / "summary.json").read_text())
    design = jaxmed.sim.get_design("semi-synthetic")
    assert doc["truth"] == pytest.approx(study.truth_values(design), rel=1e-15)
    assert (out / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert "semi-synthetic / mediation-default: 2 replications per cell" in quickstart.stdout
    # each stored replication is the library's estimate on that replication's data and key
    res = study.load(out)
    for r in range(2):
        sim_key, est_key = jax.random.split(study.replication_key(jax.random.key(0), 0, r))
        with jaxmed.precision():
            data = design.simulate(sim_key, N, ROWS - 1)
        ref = jaxmed.mediation_effects(data, design.target_policy, design.control_policy,
                                       key=est_key, check=False)
        # Same float64 computation, compiled inside the study's vmapped block instead of alone:
        # XLA may order sums differently (~1e-16 relative), which the LSTD and ratio solves
        # amplify by their condition numbers (up to about 1e11 at N = 20, T = 5, hence N = 50).
        d = ref.diagnostics
        cond = max(np.max(d.q_cond), np.max(d.ratio_cond), 1.0)
        rtol = max(1e-10, 100 * np.finfo(np.float64).eps * cond)
        assert rtol < 1e-3, cond
        np.testing.assert_allclose(res.estimate[0, r], ref.estimate, rtol=rtol, atol=1e-10)
