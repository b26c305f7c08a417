"""The jaxmed command line: study end to end on a test design, errors, estimate's data path."""

import json
import os
import sys

import jax
import numpy as np
import pytest

from jaxmed import cli, study
from jaxmed._src.study import catalog
from jaxmed._src.trajectories import trajectories_to_dataframe

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import NOISE_SPEC, ToyDesign  # noqa: E402


@pytest.fixture
def toy_registry(monkeypatch):
    """Stands in for the design registry and default estimators (wired at integration)."""
    design = ToyDesign()

    def get_design(name):
        if name != design.name:
            raise KeyError(f"unknown design {name!r}; available: [{design.name!r}]")
        return design

    monkeypatch.setattr(catalog, "get_design", get_design)
    monkeypatch.setattr(catalog, "list_designs", lambda: [design])
    monkeypatch.setattr(catalog, "default_estimator", lambda d: NOISE_SPEC)
    return design


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_study_end_to_end(tmp_path, capsys, toy_registry):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "study", "toy-semi", "--n", "8,12", "--horizon", "3",
                                "--reps", "7", "--seed", "11", "--out", str(out), "--no-progress",
                                "--batch-size", "1", "--chunk-size", "3", "--estimators", "half")
    assert code == 0, err
    doc = json.loads((out / "summary.json").read_text())
    assert doc["design"] == "toy-semi" and doc["n"] == [8, 12] and doc["horizon"] == [3]
    assert doc["reps"] == 7 and doc["seed"] == 11 and doc["jax_version"] == jax.__version__
    assert doc["truth"] == {"s0_mean": 0.0, "m1_noise_var": 1.0}
    assert doc["wall_s"] >= doc["compile_s"] > 0
    # the CLI's numbers are the library's numbers: same key, same replications
    ref = study.run(ToyDesign(), study.select_estimators(NOISE_SPEC, ["half"]), [(8, 3), (12, 3)],
                    7, 11, batch_size=1, progress=False)
    full = study.run(ToyDesign(), NOISE_SPEC, [(8, 3), (12, 3)], 7, 11, batch_size=1,
                     progress=False)
    np.testing.assert_array_equal(ref.estimate[:, :, 0], full.estimate[:, :, 1])
    summary = ref.summary()
    assert [(c["n"], c["estimator"], c["effect"]) for c in doc["cells"]] == list(
        zip(summary.n, summary.estimator, summary.effect))
    for c, (_, row) in zip(doc["cells"], summary.iterrows()):
        for k in ("bias", "sd", "mse", "coverage", "se_sd_ratio"):
            assert c[k] == pytest.approx(row[k], rel=1e-12, abs=1e-15)
    assert (out / "summary.csv").stat().st_size > 0
    assert (out / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "manifest.json").exists()
    # the printed table has one line per cell x estimator x effect with bias/SD/RMSE/coverage
    header = next(line for line in stdout.splitlines() if "estimator" in line)
    for col in ("bias", "sd", "rmse", "coverage"):
        assert col in header
    lines = [line for line in stdout.splitlines() if " half " in f" {line} "]
    assert len(lines) == 4
    first = summary.iloc[0]
    assert f"{first.bias:.4f}" in lines[0] and f"{first.rmse:.4f}" in lines[0]

    # a second invocation resumes: nothing recomputed
    code, stdout, err = run_cli(capsys, "study", "toy-semi", "--n", "8,12", "--horizon", "3",
                                "--reps", "7", "--seed", "11", "--out", str(out), "--no-progress",
                                "--estimators", "half")
    assert code == 0, err
    assert "0 computed now" in stdout


@pytest.mark.parametrize("argv, fragment", [
    (["study", "toy-semi", "--n", "8,abc"], "--n: expected comma-separated integers"),
    (["study", "toy-semi", "--n", "0"], "--n: expected comma-separated positive integers"),
    (["study", "toy-semi"], "the following arguments are required: --n"),
    (["study", "toy-semi", "--n", "8", "--reps", "-3"], "--reps: expected a positive integer"),
    (["study", "nope", "--n", "8"], "DESIGN: unknown design 'nope'"),
    (["study", "toy-semi", "--n", "8", "--estimators", "MR"], "estimators: ['MR'] not among"),
    (["study", "toy-semi", "--n", "8", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["estimate", "data.txt", "--state", "s", "--mediator", "m"], "FILE: cannot tell the format"),
    (["estimate", "missing.csv", "--state", "s", "--mediator", "m"], "FILE: 'missing.csv' does not"),
])
def test_bad_options_give_one_line_and_status_2(capsys, toy_registry, argv, fragment):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and fragment in err, err
    assert "Traceback" not in err and out == ""


def test_resuming_into_a_different_study_is_a_clear_error(tmp_path, capsys, toy_registry):
    base = ["study", "toy-semi", "--n", "8", "--horizon", "3", "--out", str(tmp_path),
            "--no-progress", "--batch-size", "1"]
    assert run_cli(capsys, *base, "--reps", "2")[0] == 0
    code, _, err = run_cli(capsys, *base, "--reps", "3")
    assert code == 2 and err.startswith("jaxmed: error: out: ") and "reps: stored 2" in err
    assert err.count("\n") == 1


def test_help_everywhere(capsys):
    for argv in (["--help"], ["study", "--help"], ["estimate", "--help"], ["designs", "--help"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: jaxmed")
    with pytest.raises(SystemExit):
        cli.main(["study", "--help"])
    assert "--chunk-size" in capsys.readouterr().out


def test_designs_lists_the_registry(capsys, toy_registry):
    code, out, _ = run_cli(capsys, "designs")
    assert code == 0 and out.split()[0] == "toy-semi" and "mediation" in out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_estimate_reads_the_users_file_into_trajectories(tmp_path, fmt):
    data = ToyDesign().simulate(jax.random.key(3), 5, 4)
    df = trajectories_to_dataframe(data, state_names=["s"], mediator_names=["m1", "m2"])
    df = df.rename(columns={"action": "a", "reward": "r", "id": "pid", "time": "t"})
    df = df.sample(frac=1.0, random_state=0)  # row order must not matter
    path = tmp_path / f"data.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    args = cli._build_parser().parse_args(
        ["estimate", str(path), "--state", "s", "--mediator", "m1,m2", "--action", "a",
         "--reward", "r", "--id", "pid", "--time", "t", "--next-state", "next_s",
         "--target-policy", "logistic:0.7@-0.2", "--control-policy", "constant:0"])
    loaded = cli._load_trajectories(args)
    for name in ("state", "action", "mediator", "reward", "next_state", "mask"):
        np.testing.assert_allclose(getattr(loaded, name), np.asarray(getattr(data, name)),
                                   rtol=1e-15, err_msg=name)
    target = cli.parse_policy(args.target_policy, loaded.state_dim)
    s = np.array([0.3])
    assert float(target.prob_one(s)) == pytest.approx(1 / (1 + np.exp(-(-0.2 + 0.7 * 0.3))),
                                                      rel=1e-12)
    assert float(cli.parse_policy(args.control_policy, 1).prob_one(s)) == 0.0


def test_policy_parsing_errors():
    with pytest.raises(ValueError, match="^policy: cannot read 'gauss:1'"):
        cli.parse_policy("gauss:1", 1)
    with pytest.raises(ValueError, match="^policy: 'logistic:1,2' has 2 weights for 3"):
        cli.parse_policy("logistic:1,2", 3)
    with pytest.raises(ValueError, match="^p: expected a probability"):
        cli.parse_policy("constant:1.5", 1)
    two = cli.parse_policy("logistic:0.5", 2)
    assert float(two.prob_one(np.array([1.0, 2.0]))) == pytest.approx(1 / (1 + np.exp(-1.5)))
