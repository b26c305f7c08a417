"""Study summaries and figures against hand-computed numbers on fixed arrays."""

import json
import math

import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.study.result import StudyResult


def fixed_result():
    """2 cells × 6 replications × 2 estimators × 2 effects, chosen by hand.

    Cell 0, replication 2 failed (status 3); replication 5 of cell 1 is missing (-1);
    estimator B does not define effect "y" (NaN everywhere); estimator A has one NaN
    estimate with status 0 in cell 1 (replication 0).
    """
    est = np.full((2, 6, 2, 2), np.nan)
    est[0, :, 0, 0] = [1.0, 1.5, 99.0, 0.5, 2.0, 1.2]      # A, x, cell 0
    est[0, :, 0, 1] = [2.1, 1.9, 99.0, 2.4, 1.7, 2.0]      # A, y
    est[0, :, 1, 0] = [0.9, 1.1, 99.0, 1.3, 0.7, 1.0]      # B, x
    est[1, :, 0, 0] = [np.nan, 1.05, 0.95, 1.1, 0.8, 7.0]  # A, x, cell 1 (rep 5 missing)
    est[1, :, 0, 1] = [2.05, 1.95, 2.2, 1.9, 2.1, 7.0]
    est[1, :, 1, 0] = [1.0, 1.02, 0.98, 1.01, 0.97, 7.0]
    se = np.where(np.isnan(est), np.nan, 0.3)
    se[1] = np.where(np.isnan(est[1]), np.nan, 0.1)
    status = np.array([[0, 0, 3, 0, 0, 0], [0, 0, 0, 0, 0, -1]], dtype=np.int32)
    est[1, 5] = np.nan
    se[1, 5] = np.nan
    z = 1.959963984540054
    return StudyResult(design="fixed", estimator="hand", estimators=("A", "B"), effects=("x", "y"),
                       grid=((100, 25), (500, 25)), reps=6, seed=0, key_data=[0, 0],
                       estimate=est, se=se, ci_low=est - z * se, ci_high=est + z * se,
                       status=status, truth={"x": 1.0, "y": 2.0})


def test_summary_matches_hand_computation():
    res = fixed_result()
    s = res.summary()
    # B × y is undefined everywhere: no rows
    assert set(zip(s["estimator"], s["effect"])) == {("A", "x"), ("A", "y"), ("B", "x")}
    assert len(s) == 6
    row = s[(s.n == 100) & (s.estimator == "A") & (s.effect == "x")].iloc[0]
    used = np.array([1.0, 1.5, 0.5, 2.0, 1.2])  # replication 2 excluded (status 3)
    err = used - 1.0
    assert row.n_reps == 6 and row.n_failed == 1 and row.n_nonfinite == 0 and row.n_used == 5
    assert row.bias == pytest.approx(err.mean(), rel=1e-12)
    sd = math.sqrt(((used - used.mean()) ** 2).sum() / 4)
    assert row.sd == pytest.approx(sd, rel=1e-12)
    assert row.bias_se == pytest.approx(sd / math.sqrt(5), rel=1e-12)
    mse = (err ** 2).mean()
    assert row.mse == pytest.approx(mse, rel=1e-12)
    assert row.rmse == pytest.approx(math.sqrt(mse), rel=1e-12)
    assert row.log_mse == pytest.approx(math.log(mse), rel=1e-12)
    sq = err ** 2
    mse_se = math.sqrt(((sq - sq.mean()) ** 2).sum() / 4) / math.sqrt(5)
    assert row.mse_se == pytest.approx(mse_se, rel=1e-12)
    assert row.log_mse_se == pytest.approx(mse_se / mse, rel=1e-12)
    # err = 0 in replication 0: log(0) = -inf, so the paper's metric is -inf here
    assert row.mean_log_sq_err == -math.inf
    # coverage: CI = est ± 1.96 · 0.3 = ±0.588 contains 1 for 1.0, 1.5, 1.2 (not 0.5? |0.5-1| = 0.5 yes; 2.0 no)
    covered = np.abs(used - 1.0) <= 1.959963984540054 * 0.3
    assert covered.tolist() == [True, True, True, False, True]
    assert row.coverage == pytest.approx(0.8)
    assert row.coverage_se == pytest.approx(math.sqrt(0.8 * 0.2 / 5), rel=1e-12)
    assert row.mean_se == pytest.approx(0.3)
    assert row.se_sd_ratio == pytest.approx(0.3 / sd, rel=1e-12)

    row = s[(s.n == 500) & (s.estimator == "A") & (s.effect == "x")].iloc[0]
    used = np.array([1.05, 0.95, 1.1, 0.8])  # rep 0 NaN with status 0; rep 5 missing
    assert row.n_reps == 5 and row.n_failed == 0 and row.n_nonfinite == 1 and row.n_used == 4
    assert row.bias == pytest.approx((used - 1).mean(), abs=1e-14)
    assert row.mean_log_sq_err == pytest.approx(np.mean(np.log((used - 1) ** 2)), rel=1e-12)
    assert row.mean_log_sq_err < row.log_mse  # Jensen: the paper's "logMSE" is smaller
    assert row.log_abs_bias == pytest.approx(math.log(abs((used - 1).mean())), rel=1e-12)
    covered = np.abs(used - 1.0) <= 1.959963984540054 * 0.1
    assert row.coverage == pytest.approx(covered.mean())

    row = s[(s.n == 500) & (s.estimator == "B") & (s.effect == "x")].iloc[0]
    used = np.array([1.0, 1.02, 0.98, 1.01, 0.97])
    assert row.coverage == 1.0 and row.coverage_se == 0.0
    assert row.sd == pytest.approx(np.std(used, ddof=1), rel=1e-12)


def test_effects_without_truth_get_nan_error_metrics():
    s = study.summarize(fixed_result(), {"x": 1.0})
    y = s[s.effect == "y"]
    assert y["bias"].isna().all() and y["coverage"].isna().all()
    assert np.isfinite(y["sd"]).all()


def test_to_frame_long_format():
    res = fixed_result()
    df = res.to_frame()
    assert list(df.columns) == ["n", "horizon", "rep", "estimator", "effect", "estimate", "se",
                                "ci_low", "ci_high", "status"]
    assert len(df) == (6 + 5) * 2 * 2  # the missing replication is left out
    sel = df[(df.n == 100) & (df.rep == 3) & (df.estimator == "A") & (df.effect == "y")]
    assert sel.estimate.item() == 2.4 and sel.status.item() == 0
    assert df[(df.n == 100) & (df.rep == 2)].status.eq(3).all()


def test_summary_files_schema(tmp_path):
    res = fixed_result()
    s = res.summary()
    paths = study.write_summary(res, s, tmp_path)
    doc = json.loads(open(paths["json"]).read())
    for k in ("design", "n", "horizon", "reps", "seed", "device", "jax_version", "wall_s",
              "compile_s", "truth", "cells"):
        assert k in doc
    assert doc["n"] == [100, 500] and doc["horizon"] == [25]
    assert doc["truth"] == {"x": 1.0, "y": 2.0}
    assert len(doc["cells"]) == len(s)
    first = doc["cells"][0]
    for k in ("n", "horizon", "estimator", "effect", "bias", "sd", "mse", "coverage"):
        assert k in first
    assert first["mean_log_sq_err"] is None  # -inf is written as null (strict JSON)
    assert first["bias"] == pytest.approx(s.iloc[0].bias, rel=1e-15)
    import pandas as pd

    csv = pd.read_csv(paths["csv"])
    np.testing.assert_allclose(csv["mse"], s["mse"], rtol=1e-12)


def test_figure_is_written_and_plots_the_summary(tmp_path):
    s = fixed_result().summary()
    path = tmp_path / "fig.png"
    data = study.plot_study(s, path)
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5000
    assert set(data) == {(m, e, est) for m in ("bias", "log_mse", "coverage")
                         for e, est in (("x", "A"), ("y", "A"), ("x", "B"))}
    for (metric, eff, est), d in data.items():
        sub = s[(s.effect == eff) & (s.estimator == est)].sort_values("n")
        np.testing.assert_array_equal(d["x"], sub["n"].to_numpy(float))
        np.testing.assert_array_equal(d["y"], sub[metric].to_numpy(float))
        np.testing.assert_array_equal(d["yerr"], 1.96 * sub[metric + "_se"].to_numpy(float))
    # the figure explains itself: T and the replications in the title, the error bars in the
    # caption (PNG text chunks); every estimator has its own marker and its own x offset, so
    # equal values (A and B overlap when their estimates agree) stay visible
    from PIL import Image

    with Image.open(path) as img:
        texts = dict(img.text)
    assert texts["Title"] == "T = 25, 6 replications per point"
    assert texts["Description"].startswith("Error bars: ±1.96 Monte Carlo SE over the replications")
    assert "Coverage: share of the nominal 95% CIs containing the truth" in texts["Description"]
    a, b = data[("bias", "x", "A")], data[("bias", "x", "B")]
    assert a["marker"] != b["marker"]
    assert (a["x_drawn"] < a["x"]).all() and (b["x_drawn"] > b["x"]).all()
    np.testing.assert_allclose(b["x_drawn"] / a["x_drawn"], np.exp(0.04 * np.log(5.0)), rtol=1e-12)
    assert study.plot_study(s, tmp_path / "t.png", title="fixed") is not None
    with Image.open(tmp_path / "t.png") as img:
        assert img.text["Title"] == "fixed; T = 25, 6 replications per point"
    paper = study.plot_study(s, tmp_path / "paper.png", log_mse="paper")
    np.testing.assert_array_equal(paper[("mean_log_sq_err", "x", "B")]["y"],
                                  s[(s.effect == "x") & (s.estimator == "B")]["mean_log_sq_err"])
    with pytest.raises(ValueError, match="^x:"):
        study.plot_study(s, tmp_path / "bad.png", x="rep")


@pytest.mark.parametrize("n_estimators", [2, 9])
def test_figure_layout_keeps_legend_titles_and_labels_apart(tmp_path, monkeypatch, n_estimators):
    # the fixed layout (no tight_layout): the legend (one row, or two for more than 7
    # estimators), the suptitle, the panel titles, the tick labels and the caption do not
    # overlap each other or leave the canvas
    from matplotlib.figure import Figure

    s = fixed_result().summary()
    s = s[s.estimator == "A"]
    import pandas as pd

    s = pd.concat([s.assign(estimator=f"E{k}") for k in range(n_estimators)])
    figs = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figs.append(self), save(self, *a, **k))[1])
    study.plot_study(s, tmp_path / "f.png", title="a title")
    fig = figs[0]
    r = fig.canvas.get_renderer()
    canvas = fig.bbox
    legend = fig.legends[0].get_window_extent(r)
    suptitle = fig._suptitle.get_window_extent(r)
    caption = fig.texts[-1].get_window_extent(r)
    assert len(fig.legends[0].get_texts()) == n_estimators
    boxes = [legend, suptitle, caption]
    for ax in fig.axes:
        boxes += [ax.title.get_window_extent(r)] if ax.get_title() else []
        boxes += [t.get_window_extent(r) for t in ax.get_xticklabels() + ax.get_yticklabels()
                  if t.get_text()]
        boxes += [ax.xaxis.label.get_window_extent(r)]
        for other in (legend, suptitle, caption):
            assert not ax.get_window_extent(r).overlaps(other)
    for b in boxes:
        assert canvas.x0 <= b.x0 and b.x1 <= canvas.x1 and canvas.y0 <= b.y0 and b.y1 <= canvas.y1
    for i, b in enumerate([legend, suptitle, caption]):
        for c in boxes[i + 1:] if i < 3 else []:
            if c is not b:
                assert not b.overlaps(c), (i, b, c)


def test_truth_values_adapter():
    class WithEffects:
        effects = {"IDE": np.float64(2.5), "meta": "text"}

    class WithAsDict:
        def as_dict(self):
            return {"ATE": np.asarray(1.25)}

    class Design:
        def truth(self):
            return WithAsDict()

    assert study.truth_values(WithEffects()) == {"IDE": 2.5}
    assert study.truth_values(Design()) == {"ATE": 1.25}
    assert study.truth_values(None) == {}
    with pytest.raises(ValueError, match="^truth:"):
        study.truth_values(3.0)


def test_default_estimator_wiring():
    from jaxmed._src.effect_table import EstimatorSpec

    spec = EstimatorSpec("own", ("a",), ("x",), lambda key, data: None)

    class Own:
        kind = "mediation"

        def estimator_spec(self):
            return spec

    class Odd:
        kind = "weird"

    assert study.default_estimator(Own()) is spec
    with pytest.raises(ValueError, match="^design: kind must be"):
        study.default_estimator(Odd())
    base = EstimatorSpec("t", ("A", "B", "C"), ("x",), lambda key, data: None)
    sub = study.select_estimators(base, ["C", "A"])
    assert sub.estimators == ("C", "A") and sub.effects == ("x",)
    with pytest.raises(ValueError, match=r"^estimators: \['D'\] not among"):
        study.select_estimators(base, ["D"])


def test_format_table_says_why_coverage_is_nan():
    import pandas as pd

    rows = []
    for est, cov in (("MR", 0.9), ("DM", np.nan)):
        for eff in ("IDE", "IME"):
            rows.append(dict(n=20, horizon=5, estimator=est, effect=eff, bias=0.125, sd=0.5,
                             rmse=0.5154, coverage=cov, n_used=2, n_failed=0))
    text = study.format_table(pd.DataFrame(rows))
    lines = text.splitlines()
    assert len(lines) == 6
    assert lines[1].split() == ["20", "5", "MR", "IDE", "0.1250", "0.5000", "0.5154", "0.9000", "2",
                                "0"]
    assert lines[3].split()[7] == "NaN"
    assert lines[5].startswith("coverage NaN for DM: no confidence intervals reported")
    assert "coverage NaN" not in study.format_table(pd.DataFrame(rows[:2]))


def test_se_sd_ratio_errors_match_their_spread_over_simulated_studies():
    """The delta-method Monte Carlo SEs of mean(SE)/SD and sqrt(mean SE²)/SD against the SD of
    those ratios over 4,000 independent simulated studies of 400 replications each, with
    heavy-tailed estimates (t with 10 df) and SEs that vary and grow with |error|, as the IJ
    SEs of MR do; the rows of the summary carry the same numbers."""
    from jaxmed._src.study.summaries import se_sd_ratio_errors

    rng = np.random.default_rng(20261201)
    studies, m = 4000, 400
    err = rng.standard_t(10, size=(studies, m))
    se = 0.9 * np.exp(0.25 * rng.normal(size=(studies, m)) + 0.1 * np.abs(err))
    sd = err.std(axis=1, ddof=1)
    ratio, rms = se.mean(axis=1) / sd, np.sqrt((se ** 2).mean(axis=1)) / sd
    got = np.array([se_sd_ratio_errors(e, s) for e, s in zip(err[:1000], se[:1000])])
    np.testing.assert_allclose(got[:, 1], rms[:1000], rtol=1e-12)
    # the SD of a ratio over 4,000 studies has a relative Monte Carlo error of about 1.1 %;
    # the mean delta-method SE over 1,000 studies is within 4 % of it (measured: 0.6 %, 0.5 %)
    assert abs(np.mean(got[:, 0]) / np.std(ratio, ddof=1) - 1) < 0.04
    assert abs(np.mean(got[:, 2]) / np.std(rms, ddof=1) - 1) < 0.04
    # the estimators differ: a constant SE has no SE part, a varying one adds to it
    flat = se_sd_ratio_errors(err[0], np.full(m, 0.9))
    assert flat[0] == pytest.approx(flat[2], rel=1e-12) and flat[0] < got[0, 0]
    assert all(math.isnan(x) for x in se_sd_ratio_errors(err[0, :2], se[0, :2]))
    assert all(math.isnan(x) for x in se_sd_ratio_errors(np.ones(5), np.ones(5)))
    zero = se_sd_ratio_errors(err[0], np.zeros(m))
    assert math.isnan(zero[0]) and zero[1] == 0.0 and math.isnan(zero[2])
    row = _summary_row(err[0], se[0])
    assert (row["se_sd_ratio_se"], row["rms_se_sd_ratio"], row["rms_se_sd_ratio_se"]) == \
        pytest.approx(tuple(got[0]), rel=1e-12)


def _summary_row(err, se):
    from jaxmed._src.study.summaries import summarize_cell

    z = 1.959963984540054
    return summarize_cell(err, se, err - z * se, err + z * se, np.zeros(err.size, int), 0.0)
