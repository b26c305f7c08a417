"""κ = 1, T = 100: ratio features of the state centred at its calendar-time mean (issue 15).

Usage (repository root, ``PYTHONPATH=.``)::

    python3 experiments/drift_gap_diagnosis/centered_ratio.py N T REPS KAPPA MODE...

Modes (the calendar-time pipeline, default configuration, same data and key for every mode):

- ``plain``: as it is (random Fourier features of the standardised (s, τ));
- ``ctr``: features of (s − m̂(τ), τ), m̂(τ) the weighted mean of the observed states at
  calendar time τ (the next state (S', τ') is centred with m̂(τ'));
- ``ctr3``: features of (s, s − m̂(τ), τ);
- ``rfD`` (a token, e.g. ``ctr_rf60``): D features;
- ``smK`` (a token): the Q basis gains the products of the first K terms of the state's
  spline block with the linear mediator terms (``experiments/q_basis_screen.py``'s ``smK``;
  τ's block left out).

Under exogenous drift the state law at τ is shifted by the drift, by the same amount under
every policy, so the ratio d^ν(s | τ) / d^b(s | τ) is closer to a fixed function of s − m(τ)
than of s. Diagnosis only: replaces ``pipeline.fit_ratio_features`` / ``ratio_features`` in
this process. Prints the MR, DM and MIS1 biases against the drift truth per mode and the
paired differences of MR against ``plain``.
"""

import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from experiments.q_basis_screen import VARIANT as Q_VARIANT  # noqa: E402  (patches the Q basis)
from jaxmed._src import policies as P  # noqa: E402
from jaxmed._src.mediation import pipeline as PL  # noqa: E402
from jaxmed._src.mediation import state_ratio as SR  # noqa: E402
from jaxmed._src.mediation.time_effects import augment_with_time, time_config  # noqa: E402
from jaxmed._src.sim import drift as D  # noqa: E402
from jaxmed._src.state_slice_policy import StateSlicePolicy  # noqa: E402
from jaxmed._src.trajectories import Trajectories  # noqa: E402

n, T, reps, kappa = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
modes = sys.argv[5:]
VARIANT = {"ctr": None}


class Centred(NamedTuple):
    inner: SR.RatioFeatures
    mtab: jax.Array  # (T,) mean state per calendar time


def centred_state(mtab, state):
    tau = state[:, -1].astype(jnp.int32)
    c = state[:, :1] - mtab[tau][:, None]
    if VARIANT["ctr"] == "ctr3":
        return jnp.concatenate([state[:, :1], c, state[:, 1:]], axis=1)
    return jnp.concatenate([c, state[:, 1:]], axis=1)


def fit_ratio_features(key, state, weights, config):
    if VARIANT["ctr"] is None:
        return SR.fit_ratio_features(key, state, weights, config)
    tau = state[:, -1].astype(jnp.int32)
    sw = jax.ops.segment_sum(weights * state[:, 0], tau, T)
    ww = jax.ops.segment_sum(weights, tau, T)
    mtab = sw / ww
    return Centred(SR.fit_ratio_features(key, centred_state(mtab, state), weights, config), mtab)


def ratio_features(params, state, feature_major=False):
    if isinstance(params, Centred):
        return SR.ratio_features(params.inner, centred_state(params.mtab, state), feature_major)
    return SR.ratio_features(params, state, feature_major)


PL.fit_ratio_features = fit_ratio_features
PL.ratio_features = ratio_features
pol = P.semi_synthetic_target_policy()


def timed(key, d, mode):
    tokens = mode.split("_")
    VARIANT["ctr"] = next((t for t in ("ctr", "ctr3") if t in tokens), None)
    Q_VARIANT["sm"] = next((int(t[2:]) for t in tokens
                            if t.startswith("sm") and t[2:].isdigit()), 0)
    cfg = time_config(None, "spline")
    for t in tokens:
        if t.startswith("rf") and t[2:].isdigit():
            cfg = cfg.replace(ratio_features=int(t[2:]))
    tau = jnp.broadcast_to(jnp.arange(T, dtype=d.state.dtype), d.mask.shape)
    aug = augment_with_time(d, tau, T)
    fit = PL.fit_policy_free(key, aug, jnp.ones(d.mask.shape[0]), cfg)
    return PL.policy_stage(fit, StateSlicePolicy(pol, 1), 0, cfg).estimate


fns = {m: jax.jit(lambda k, d, m=m: timed(k, d, m)) for m in modes}
res = {m: [] for m in modes}
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(1000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T, strength=kappa, period=T)
    d = Trajectories(*(jnp.asarray(x, jnp.float64) for x in d))
    t0 = time.time()
    for m in modes:
        res[m].append(np.asarray(fns[m](k2, d)))
    print(r, f"{time.time() - t0:.1f}s", flush=True)
tr = D.cached_drift_truth(kappa, T).effects
truth = np.array([tr[e] for e in ("IDE", "IME", "DDE", "DME", "ATE")])


def mean_se(x):
    return " ".join(f"{a:+.4f}±{b:.4f}" for a, b in
                    zip(x.mean(0), x.std(0, ddof=1) / np.sqrt(reps)))


for m in modes:
    for i, e in ((0, "MR"), (1, "DM"), (2, "MIS1")):
        print(f"{m:14s} {e:4s} bias", mean_se(np.array(res[m])[:, i] - truth))
base = np.array(res[modes[0]])[:, 0]
for m in modes[1:]:
    print(f"{m:14s} MR -{modes[0]}", mean_se(np.array(res[m])[:, 0] - base))
