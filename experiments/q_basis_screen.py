"""Screen richer Q bases on a design: paired replications against the default (issue 13).

Usage (repository root, ``PYTHONPATH=.``)::

    python3 experiments/q_basis_screen.py DESIGN N T REPS MODE...

Modes (each against the design's default configuration, same data and key):

- ``degK``: mediator monomials of total degree K in the Q basis (the configuration allows
  at most 3; the Gaussian expectations stay exact through ``gaussian_raw_moments``);
- ``smK``: products of the first K terms of each state coordinate's spline block with the
  linear mediator terms, appended to φ(s, m) (linear in m, so the Gaussian expectations stay
  exact).

Diagnosis only, not the library: ``smK`` replaces ``q_function._time_interactions`` and
``degK`` bypasses the configuration's check, in this process. Prints the MR, DM and MIS1
biases against the design's truth per mode and MR's paired differences against the default.
Session 18: ``semi-synthetic 1500 25 40 deg4 deg5`` and ``semi-synthetic 1500 25 30 sm1 sm3
sm9`` (keys 9000.. for the data, 3.. for the estimation); numbers in experiments/README.md.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed._src.mediation import q_function as QF  # noqa: E402
from jaxmed._src.mediation.design_config import config_for_design  # noqa: E402
from jaxmed._src.sim.designs import get_design, truth  # noqa: E402
from jaxmed.mediation import mediation_core  # noqa: E402

EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")
VARIANT = {"sm": 0}  # set while a mode's program is traced
_time_interactions = QF._time_interactions


def time_interactions(h, g, ds, dm, config, axis=-1, blocks=False):
    """``q_function._time_interactions`` with ``VARIANT["sm"] = K`` products appended; in the
    calendar-time pipeline (``q_time_interactions`` not "none") τ's block, the last, is left
    out (``drift_gap_diagnosis/centered_ratio.py`` imports this)."""
    out = _time_interactions(h, g, ds, dm, config, axis=axis, blocks=blocks)
    kk = VARIANT["sm"]
    if not kk:
        return out
    k = config.state_knots + 4
    n_state = ds - (config.q_time_interactions != "none")
    cols = (lambda x, sl: x[:, sl]) if axis == -1 else (lambda x, sl: x[sl])  # noqa: E731
    sb = jnp.concatenate([cols(h, slice(j * k, j * k + kk)) for j in range(n_state)], axis=axis)
    m = cols(g, slice(0, dm))
    if axis == -1:
        inter = (sb[:, :, None] * m[:, None, :]).reshape(h.shape[0], -1)
    else:
        inter = (sb[:, None, :] * m[None, :, :]).reshape(-1, h.shape[1])
    return tuple(out) + (inter,) if blocks else jnp.concatenate([out, inter], axis=axis)


QF._time_interactions = time_interactions


def main():
    name, n, horizon, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    modes = ["default"] + sys.argv[5:]
    design = get_design(name)
    base = config_for_design(design)

    def config_of(mode):
        config = base.replace()
        if mode.startswith("deg"):
            object.__setattr__(config, "q_mediator_degree", int(mode[3:]))  # past the check
        return config

    def run(key, data, mode):
        VARIANT["sm"] = int(mode[2:]) if mode.startswith("sm") else 0
        return mediation_core(key, data, design.target_policy, 0, config_of(mode)).estimate[:3]

    fns = {m: jax.jit(lambda k, d, m=m: run(k, d, m)) for m in modes}
    res = {m: [] for m in modes}
    for r in range(reps):
        data = design.simulate(jax.random.key(9000 + r), n, horizon)
        for m, f in fns.items():
            res[m].append(np.asarray(f(jax.random.key(3 + r), data)))
    tr = truth(design)
    theta = np.array([tr.effects[e] for e in EFFECTS])
    fmt = lambda x: " ".join(f"{a:+.4f}±{b:.4f}" for a, b in  # noqa: E731
                             zip(x.mean(0), x.std(0, ddof=1) / np.sqrt(reps)))
    for m in modes:
        est = np.array(res[m])
        for i, row in enumerate(("MR", "DM", "MIS1")):
            err = est[:, i] - theta
            print(f"{m:8s} {row:4s} bias {fmt(err)} sd {err.std(0, ddof=1).round(4)}")
    base_mr = np.array(res["default"])[:, 0]
    for m in modes[1:]:
        print(f"{m:8s} MR - default {fmt(np.array(res[m])[:, 0] - base_mr)}")


if __name__ == "__main__":
    main()
