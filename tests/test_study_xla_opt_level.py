"""XLA's backend optimisation level of a study's programs (``run(..., xla_opt_level=...)``).

* the "auto" rule against hand-computed trajectory-step counts (level 0 up to
  ``SMALL_STUDY_STEPS`` on CPU, XLA's default above it and on accelerators);
* a study compiled at level 0 agrees with the same study at XLA's default level to rounding
  (1e-12 relative; level 0 fuses no multiply-adds), and the level is part of its identity:
  recorded in the manifest, kept on resume, a resume at another level refused;
* the command line's ``--xla-opt-level``, in a subprocess (recorded, and said in the output).
"""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.study.runner import SMALL_STUDY_STEPS, _xla_opt_level

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import GRID, NOISE_SPEC, ToyDesign  # noqa: E402

CPU = [SimpleNamespace(platform="cpu")]
GPU = [SimpleNamespace(platform="gpu")]


def test_auto_rule_counts_trajectory_steps_at_the_padded_n():
    quickstart = [(100, 25), (200, 25)]  # 8 x (2500 + 5000) = 60,000 steps
    assert _xla_opt_level("auto", quickstart, 8, None, CPU) == 0
    assert _xla_opt_level("auto", quickstart, 100, None, CPU) is None  # 750,000 steps
    assert SMALL_STUDY_STEPS == 100_000
    # 13 reps: 97,500 steps; padded to N = 300 for the first cell: 13 x 12,500 = 162,500
    assert _xla_opt_level("auto", quickstart, 13, None, CPU) == 0
    assert _xla_opt_level("auto", quickstart, 13, [300, None], CPU) is None
    assert _xla_opt_level("auto", quickstart, 8, None, GPU) is None
    assert _xla_opt_level(None, quickstart, 8, None, CPU) is None
    assert _xla_opt_level(2, quickstart, 8, None, GPU) == 2
    with pytest.raises(ValueError, match="xla_opt_level"):
        _xla_opt_level(4, quickstart, 8, None, CPU)


def _manifest(path):
    with open(os.path.join(path, "manifest.json")) as fh:
        return json.load(fh)


def test_level_zero_agrees_with_the_default_and_is_part_of_the_identity(tmp_path):
    fast = study.run(ToyDesign(), NOISE_SPEC, GRID, 4, 5, out=str(tmp_path / "a"),
                     progress=False)  # 4 x (8 x 3 + 12 x 4) steps: "auto" gives level 0
    assert _manifest(tmp_path / "a")["xla_opt_level"] == 0
    default = study.run(ToyDesign(), NOISE_SPEC, GRID, 4, 5, out=str(tmp_path / "b"),
                        progress=False, xla_opt_level=None)
    assert "xla_opt_level" not in _manifest(tmp_path / "b")  # default studies: as before
    for f in ("estimate", "se"):
        a, b = getattr(fast, f), getattr(default, f)
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    again = study.run(ToyDesign(), NOISE_SPEC, GRID, 4, 5, out=str(tmp_path / "a"),
                      progress=False)  # resumed: nothing to compute, the same numbers
    assert np.array_equal(again.estimate, fast.estimate)
    with pytest.raises(ValueError, match="xla_opt_level"):
        study.run(ToyDesign(), NOISE_SPEC, GRID, 4, 5, out=str(tmp_path / "a"),
                  progress=False, xla_opt_level=2)


def test_command_line_flag(tmp_path):
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "jaxmed", "study", "toy1", "--n", "20", "--horizon", "5",
           "--reps", "2", "--seed", "0", "--no-progress", "--estimators", "MR",
           "--xla-opt-level", "1", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _manifest(out)["xla_opt_level"] == 1
    assert "compiled at XLA optimisation level 1\n" in res.stdout  # said, without the hint
    bad = subprocess.run(cmd[:-4] + ["--xla-opt-level", "7", "--out", str(tmp_path / "t")],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--xla-opt-level" in bad.stderr
