"""``experiments/truth_precision.py``: an independent truth simulation pooled with the cached one."""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from experiments.truth_precision import EFFECTS, pool  # noqa: E402


def test_pool_is_the_chain_weighted_mean_of_independent_estimates():
    a = dict(effects={k: 1.0 + i for i, k in enumerate(EFFECTS)},
             se={k: 0.02 for k in EFFECTS})
    b = dict(effects={k: 2.0 + i for i, k in enumerate(EFFECTS)},
             se={k: 0.01 for k in EFFECTS})
    out = pool(a, b, 100, 300)
    for i, k in enumerate(EFFECTS):
        assert np.isclose(out["effects"][k], 0.25 * (1.0 + i) + 0.75 * (2.0 + i), rtol=1e-15)
        assert np.isclose(out["se"][k], np.sqrt((0.25 * 0.02) ** 2 + (0.75 * 0.01) ** 2),
                          rtol=1e-15)
    assert out["n_chains"] == 400


def test_script_runs_and_pools_with_the_cached_truth(tmp_path):
    out = tmp_path / "t.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "truth_precision.py"),
                    "multidim", "--seed", "7", "--chains", "8", "--out", str(out)],
                   check=True, env=env, capture_output=True, timeout=600)
    d = json.loads(out.read_text())
    n_c = d["cached"]["n_chains"]
    assert d["pooled"]["n_chains"] == n_c + 8
    for k in EFFECTS:
        want = (n_c * d["cached"]["effects"][k] + 8 * d["independent"]["effects"][k]) / (n_c + 8)
        assert np.isclose(d["pooled"]["effects"][k], want, rtol=1e-14)
        # 8 independent chains agree with the cached truth within a few combined SEs
        assert abs(d["difference_over_combined_se"][k]) < 5
    # the seed of the cached truth would repeat its chains: refused
    r = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "truth_precision.py"),
                        "multidim", "--seed", str(d["cached"]["seed"]), "--chains", "8",
                        "--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "other than the cached truth" in r.stderr
