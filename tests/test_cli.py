"""The jaxmed command line in-process against the real design registry (nothing stubbed):
option and file errors (one line on stderr, exit status 2), the CLI's wording of data errors,
help texts, the estimate command's data path, and `jaxmed study` end to end on a long-term
design (compared with the library's own run). Subprocess runs: test_cli_subprocess.py."""

import json
import os
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from jaxmed import cli, study
from jaxmed._src.trajectories import trajectories_to_dataframe

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import ToyDesign  # noqa: E402  (a data generator, not a registry entry)


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, fragment):
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and fragment in err, err
    assert "Traceback" not in err and out == ""


STUDY = ["study", "longterm-s1", "--horizon", "6", "--no-progress"]


@pytest.mark.parametrize("argv, fragment", [
    (["study", "longterm-s1", "--n", "8,abc"], "--n: expected comma-separated integers"),
    (["study", "longterm-s1", "--n", "0"], "--n: expected comma-separated positive integers"),
    (["study", "longterm-s1"], "the following arguments are required: --n"),
    (["study", "longterm-s1", "--n", "8", "--reps", "-3"], "--reps: expected a positive integer"),
    # the real registry raises ValueError (not KeyError): still a DESIGN error naming the fix
    (["study", "nope", "--n", "8"], "jaxmed: error: DESIGN: unknown design 'nope'; registered: "
                                    "['semi-synthetic'"),
    (["study", "semi", "--n", "8"], "(see `jaxmed designs`)"),
    (["study", "longterm-s1", "--n", "8", "--estimators", "MR"], "estimators: ['MR'] not among"),
    (["study", "longterm-s1", "--n", "8", "--bogus"], "unrecognized arguments: --bogus"),
    (["study", "longterm-s1", "--n", "8", "--share", "3/2"],
     "--share: expected I/K with integers 1 <= I <= K, got '3/2'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["estimate", "data.txt", "--state", "s", "--mediator", "m"], "FILE: cannot tell the format"),
    (["estimate", "missing.csv", "--state", "s", "--mediator", "m"], "FILE: 'missing.csv' does not"),
])
def test_bad_options_give_one_line_and_status_2(capsys, argv, fragment):
    assert_one_line_error(*run_cli(capsys, *argv), fragment)


def _unwritable_dir(tmp_path):
    """A directory this process cannot create entries in (root ignores permission bits)."""
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):
        if not os.path.isdir("/sys"):
            pytest.skip("running as root without /sys: no unwritable directory available")
        return "/sys"
    return str(ro)


@pytest.mark.parametrize("case", ["under-a-file", "unwritable", "is-a-file"])
def test_study_out_that_cannot_be_written_is_one_line(tmp_path, capsys, case):
    (tmp_path / "file").write_text("x")
    out = {"under-a-file": tmp_path / "file" / "sub",
           "unwritable": os.path.join(_unwritable_dir(tmp_path), "jaxmed-out"),
           "is-a-file": tmp_path / "file"}[case]
    code, stdout, err = run_cli(capsys, *STUDY, "--n", "20", "--reps", "1", "--out", out)
    assert_one_line_error(code, stdout, err, f"jaxmed: error: --out: ")
    assert str(out) in err


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """5 trajectories of 4 steps of the semi-synthetic simulator (sigma = 1), as a user's CSV."""
    data = ToyDesign().simulate(jax.random.key(3), 5, 4)
    df = trajectories_to_dataframe(data, state_names=["s"], mediator_names=["m1", "m2"])
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    df.to_csv(path, index=False)
    return path, df


ESTIMATE = ["--state", "s", "--mediator", "m1,m2"]


def test_estimate_file_and_out_errors_are_one_line(tmp_path, capsys, small_csv):
    path, _ = small_csv
    cases = [
        ([tmp_path, "--format", "csv"], f"FILE: {str(tmp_path)!r} is a directory, not a csv file"),
        ([path, "--out", tmp_path / "e.txt"], "--out: expected a path ending in .json or .csv"),
        ([path, "--out", tmp_path / "no" / "e.json"], "--out: cannot write"),
        ([path, "--out", os.path.join(_unwritable_dir(tmp_path), "e.json")], "--out: cannot write"),
        ([path, "--out", tmp_path], "--out: expected a path ending in .json or .csv"),
    ]
    (tmp_path / "dir.json").mkdir()
    cases.append(([path, "--out", tmp_path / "dir.json"], "is a directory"))
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    cases.append(([bad], f"FILE: cannot read {str(bad)!r} as parquet"))
    for argv, fragment in cases:
        assert_one_line_error(*run_cli(capsys, "estimate", *argv, *ESTIMATE), fragment)


def test_data_errors_speak_the_command_lines_language(tmp_path, capsys, small_csv):
    _, df = small_csv
    gap = tmp_path / "gap.csv"
    df[~((df["id"] == 2) & (df["time"] == 2))].to_csv(gap, index=False)
    code, out, err = run_cli(capsys, "estimate", gap, *ESTIMATE)
    assert_one_line_error(code, out, err, "time: id 2 jumps from time 1 to 3")
    assert "--gaps ignore" in err and "gaps='ignore'" not in err
    single = tmp_path / "single.csv"
    df[df["time"] == 0].to_csv(single, index=False)
    code, out, err = run_cli(capsys, "estimate", single, *ESTIMATE)
    assert_one_line_error(code, out, err, f"jaxmed: error: FILE: {str(single)!r}: every id has a "
                                          f"single row; without --next-state columns")
    action = tmp_path / "action.csv"
    df.assign(action=np.where((df["id"] == 3) & (df["time"] == 1), 2, df["action"])).to_csv(
        action, index=False)
    code, out, err = run_cli(capsys, "estimate", action, *ESTIMATE)
    assert_one_line_error(code, out, err, "action: expected binary actions in {0, 1} in column "
                                          "'action', got 2 at id 3, time 1")
    missing = tmp_path / "missing.csv"
    df.to_csv(missing, index=False)
    code, out, err = run_cli(capsys, "estimate", missing, "--state", "s,zz", "--mediator", "m1")
    assert_one_line_error(code, out, err, "state: column(s) ['zz'] not in the file")


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
    with pytest.raises(SystemExit):
        cli.main(["estimate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "95% CIs" in text and "%%" not in text
    assert "an id with k rows gives k - 1 steps (20 rows: T = 19)" in text
    assert "--out FILE.json|FILE.csv" in text and "long-run average rewards per step" in text


def test_designs_lists_the_real_registry(capsys):
    code, out, _ = run_cli(capsys, "designs")
    assert code == 0
    rows = [line.split()[:3] for line in out.splitlines()]
    registry = study.list_designs()
    assert [r[0] for r in rows] == [getattr(d, "name", d) for d in registry]
    for name, kind, horizon in rows:
        d = study.get_design(name)
        assert kind == d.kind and horizon == f"T={d.default_horizon}"


@pytest.mark.slow  # CI time: 54 s; the CLI study of a real design also runs in test_cli_subprocess.py and the README block
def test_study_end_to_end_on_a_real_design(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, *STUDY, "--n", "30", "--reps", "3", "--seed", "11",
                                "--out", out, "--batch-size", "1", "--chunk-size", "2",
                                "--estimators", "nonstationary")
    assert code == 0, err
    doc = json.loads((out / "summary.json").read_text())
    assert doc["design"] == "longterm-s1" and doc["n"] == [30] and doc["horizon"] == [6]
    assert doc["reps"] == 3 and doc["seed"] == 11 and doc["jax_version"] == jax.__version__
    design = study.get_design("longterm-s1")
    assert doc["truth"] == pytest.approx(study.truth_values(design), rel=1e-15)
    # the CLI's numbers are the library's numbers: same key, same replications
    spec = study.select_estimators(study.default_estimator(design), ["nonstationary"])
    ref = study.run(design, spec, [(30, 6)], 3, 11, batch_size=1, progress=False)
    summary = ref.summary()
    assert [(c["n"], c["estimator"], c["effect"]) for c in doc["cells"]] == list(
        zip(summary.n, summary.estimator, summary.effect))
    for c, (_, row) in zip(doc["cells"], summary.iterrows()):
        for k in ("bias", "sd", "mse", "coverage"):
            assert c[k] == pytest.approx(row[k], rel=1e-12, abs=1e-15, nan_ok=True)
    assert (out / "figure.png").read_bytes()[:4] == b"\x89PNG"
    header = next(line for line in stdout.splitlines() if "estimator" in line)
    for col in ("bias", "sd", "rmse", "coverage"):
        assert col in header
    lines = [line for line in stdout.splitlines() if " nonstationary " in f" {line} "]
    assert len(lines) == len(summary)
    assert f"{summary.iloc[0].bias:.4f}" in lines[0]
    # a second invocation resumes: nothing recomputed; a different study is a clear error
    code, stdout, err = run_cli(capsys, *STUDY, "--n", "30", "--reps", "3", "--seed", "11",
                                "--out", out, "--estimators", "nonstationary", "--batch-size", "1")
    assert code == 0 and "0 computed now" in stdout, err
    code, stdout, err = run_cli(capsys, *STUDY, "--n", "30", "--reps", "4", "--seed", "11",
                                "--out", out, "--estimators", "nonstationary", "--batch-size", "1")
    assert_one_line_error(code, stdout, err, "jaxmed: error: out: ")
    assert "reps: stored 3" in err


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


def test_text_times_in_a_file_are_ordered_naturally(tmp_path):
    """t0..t3 written as text order by their integer (t10 after t9, not after t1)."""
    data = ToyDesign().simulate(jax.random.key(4), 3, 11)
    df = trajectories_to_dataframe(data, state_names=["s"], mediator_names=["m1", "m2"])
    path = tmp_path / "text.csv"
    df.assign(time="t" + df["time"].astype(str)).to_csv(path, index=False)
    args = cli._build_parser().parse_args(["estimate", str(path), *ESTIMATE])
    loaded = cli._load_trajectories(args)
    np.testing.assert_array_equal(loaded.state, np.asarray(data.state)[:, :-1])
    np.testing.assert_array_equal(loaded.next_state, np.asarray(data.state)[:, 1:])
    assert pd.read_csv(path)["time"].iloc[10] == "t10"


def test_policy_parsing_errors():
    with pytest.raises(ValueError, match="^policy: cannot read 'gauss:1'"):
        cli.parse_policy("gauss:1", 1)
    with pytest.raises(ValueError, match="^policy: 'logistic:1,2' has 2 weights for 3"):
        cli.parse_policy("logistic:1,2", 3)
    with pytest.raises(ValueError, match="^p: expected a probability"):
        cli.parse_policy("constant:1.5", 1)
    two = cli.parse_policy("logistic:0.5", 2)
    assert float(two.prob_one(np.array([1.0, 2.0]))) == pytest.approx(1 / (1 + np.exp(-1.5)))


def test_status_in_words_covers_every_pipeline_bit():
    from jaxmed._src.mediation import pipeline
    from jaxmed._src.status import mediation_status_text

    assert mediation_status_text(0) == "ok (every solve succeeded)"
    one = {pipeline.STATUS_NONFINITE: "non-finite estimate",
           pipeline.STATUS_Q_ILL_CONDITIONED: "LSTD (Q-function) matrix is ill-conditioned",
           pipeline.STATUS_RATIO_ILL_CONDITIONED: "state-ratio normal matrix is ill-conditioned"}
    for bit, words in one.items():
        text = mediation_status_text(bit)
        assert text.startswith("problem: ") and words in text and text.count(";") == 0
    both = mediation_status_text(pipeline.STATUS_NONFINITE | pipeline.STATUS_RATIO_ILL_CONDITIONED)
    assert both.count(";") == 1 and "non-finite" in both and "state-ratio" in both
    assert mediation_status_text(128 | 1).endswith("; unknown status bits 128")
    se_text = mediation_status_text(64)  # SE_NONFINITE
    assert se_text.startswith("problem: ") and "non-finite standard error" in se_text


def test_gaps_ignore_takes_consecutive_rows_as_steps(tmp_path):
    """``estimate --gaps ignore``: an id with a missing time step is read with its rows as
    consecutive steps (numpy reference below); without the option it is a one-line error."""
    data = ToyDesign().simulate(jax.random.key(5), 4, 6)
    df = trajectories_to_dataframe(data, state_names=["s"], mediator_names=["m1", "m2"])
    gap = df.drop(df.index[(df["id"] == 2) & (df["time"] == 3)])  # id 2 misses t = 3
    path = tmp_path / "gap.csv"
    gap.to_csv(path, index=False)
    args = cli._build_parser().parse_args(["estimate", str(path), *ESTIMATE, "--gaps", "ignore"])
    loaded = cli._load_trajectories(args)
    s = np.asarray(data.state)[..., 0]  # (4, 6): the s column of rows t = 0..5
    assert loaded.state.shape[:2] == (4, 5)  # 6 rows per id give 5 steps
    for i in (0, 1, 3):
        np.testing.assert_array_equal(loaded.state[i, :, 0], s[i, :-1])
        np.testing.assert_array_equal(loaded.next_state[i, :, 0], s[i, 1:])
    kept = np.delete(s[2], 3)           # id 2: rows t = 0, 1, 2, 4, 5 -> 4 steps
    np.testing.assert_array_equal(loaded.state[2, :4, 0], kept[:-1])
    np.testing.assert_array_equal(loaded.next_state[2, :4, 0], kept[1:])
    np.testing.assert_array_equal(loaded.mask[2], [1, 1, 1, 1, 0])
    with pytest.raises(ValueError, match="--gaps ignore"):
        cli._load_trajectories(cli._build_parser().parse_args(["estimate", str(path), *ESTIMATE]))
